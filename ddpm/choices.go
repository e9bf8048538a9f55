package ddpm

import (
	"fmt"
	"strings"
)

// Spacing is how a sampler places its points among the schedule's T
// timesteps (diffusers' timestep_spacing; see SpacedTimesteps). The zero
// value is the sampler's own default.
type Spacing int

// The spacings.
const (
	DefaultSpacing Spacing = iota // the sampler's default
	Leading                       // (n-1-i)·⌊T/n⌋
	Trailing                      // round(T - i·T/n) - 1
	Linspace                      // n evenly spaced points from T-1 down to 0, rounded
)

var spacingNames = [...]string{"", "leading", "trailing", "linspace"}

// Spacings are the names ParseSpacing takes (besides "" for the default).
var Spacings = spacingNames[1:]

func (s Spacing) String() string {
	switch {
	case s == DefaultSpacing:
		return "default"
	case s > 0 && int(s) < len(spacingNames):
		return spacingNames[s]
	}
	return fmt.Sprintf("Spacing(%d)", int(s))
}

// ParseSpacing reads a spacing name ("" is DefaultSpacing).
func ParseSpacing(name string) (Spacing, error) {
	for i, n := range spacingNames {
		if n == name {
			return Spacing(i), nil
		}
	}
	return DefaultSpacing, fmt.Errorf("unknown timestep spacing %q (want %s)", name, strings.Join(Spacings, ", "))
}

// or returns s, or def for the default.
func (s Spacing) or(def Spacing) Spacing {
	if s == DefaultSpacing {
		return def
	}
	return s
}

// Variance is DDPM's choice of the reverse step's variance.
type Variance int

// The variances.
const (
	FixedSmall Variance = iota // β̃ = β'·(1-ᾱ_t')/(1-ᾱ_t), the posterior's
	FixedLarge                 // β'
)

func (v Variance) String() string {
	switch v {
	case FixedSmall:
		return "fixed_small"
	case FixedLarge:
		return "fixed_large"
	}
	return fmt.Sprintf("Variance(%d)", int(v))
}
