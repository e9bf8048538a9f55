// Command diffuse trains and samples diffusion models. This is a skeleton:
// the subcommands (train, sample, noise, schedules) arrive with the DDPM work.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "diffuse: the train/sample/noise/schedules subcommands are not built yet (see the README's status)")
	os.Exit(2)
}
