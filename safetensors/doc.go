package safetensors

// Files:
//
//	safetensors.go  File (a validated, memory-mapped file; typed accessors that copy),
//	                Read, Parse, Write (streamed, atomic), F16/BF16 conversions
//	mmap_*.go       memory mapping with golang.org/x/sys/unix, a plain read elsewhere
