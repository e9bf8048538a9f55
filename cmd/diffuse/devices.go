package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/godiffuse/godiffuse/device"
	"github.com/godiffuse/godiffuse/kernels"
	"github.com/godiffuse/godiffuse/kernels/vulkan"
)

func runDevices(args []string) error {
	fs := newFlags("devices", "Lists the devices diffuse can run on (the N of -device vulkan:N) and which one -device auto picks.")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Printf("cpu        %s\n", kernels.CPU().Name())
	devs, err := vulkan.Devices()
	if err != nil {
		fmt.Printf("vulkan     none: %v\n", err)
	}
	for _, d := range devs {
		extra := ""
		if len(d.CooperativeMatrix) > 0 || d.CooperativeMatrixNV {
			extra = ", cooperative matrices"
		}
		fmt.Printf("vulkan:%-3d %s (%s, Vulkan %s, subgroup %d%s)\n", d.Index, d.Name, d.Type, d.APIVersion, d.SubgroupSize, extra)
	}
	_, why, err := device.Select("auto")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, strings.Replace(why, "device ", "auto picks ", 1))
	return nil
}
