//go:build !windows

package vk

import (
	"reflect"
	"testing"
)

// The Go structs are transcribed by vkgen from vulkan_core.h; nothing but
// this test checks them against the C compiler's layout (sizes and every
// field's offset, recorded by vkgen with gcc in layout_c_test.go). A wrong
// offset would make the driver read garbage silently.
func TestStructLayoutsMatchC(t *testing.T) {
	if len(cLayouts) != len(goStructs) {
		t.Fatalf("%d C layouts for %d Go structs", len(cLayouts), len(goStructs))
	}
	for _, c := range cLayouts {
		v, ok := goStructs[c.name]
		if !ok {
			t.Errorf("%s: no Go struct", c.name)
			continue
		}
		typ := reflect.TypeOf(v)
		if typ.Size() != c.size {
			t.Errorf("%s: Go size %d, C size %d", c.name, typ.Size(), c.size)
		}
		if typ.NumField() != len(c.offsets) {
			t.Errorf("%s: %d Go fields, %d C fields", c.name, typ.NumField(), len(c.offsets))
			continue
		}
		for i, off := range c.offsets {
			if f := typ.Field(i); f.Offset != off {
				t.Errorf("%s.%s: Go offset %d, C offset %d", c.name, f.Name, f.Offset, off)
			}
		}
	}
}
