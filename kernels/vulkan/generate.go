package vulkan

//go:generate go run ./internal/spvgen
