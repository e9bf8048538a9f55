package vulkan

import "time"

// ProfileEntry is the time of one shader at one grid size (Device.Profile).
type ProfileEntry struct {
	Shader string        // the pipeline's name (shaders.txt)
	Grid   [3]int        // workgroups in x, y, z
	Calls  int           // dispatches
	Time   time.Duration // wall time of those dispatches, each submitted and waited for alone
}
