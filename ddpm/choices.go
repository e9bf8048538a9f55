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

// BetaSchedule names a noise schedule (NewSchedule). It reads and writes
// itself as its name in JSON and on the command line (flag.Value).
type BetaSchedule int

// The schedules.
const (
	Linear       BetaSchedule = iota // β from 1e-4 to 0.02, evenly spaced
	ScaledLinear                     // √β evenly spaced, squared (latent diffusion)
	Cosine                           // Nichol & Dhariwal's ᾱ (diffusers' squaredcos_cap_v2)
	Sigmoid                          // β along a sigmoid (GeoDiff)
)

var betaScheduleNames = [...]string{"linear", "scaled_linear", "cosine", "sigmoid"}

// BetaSchedules are the names ParseBetaSchedule takes.
var BetaSchedules = betaScheduleNames[:]

func (b BetaSchedule) String() string {
	if b >= 0 && int(b) < len(betaScheduleNames) {
		return betaScheduleNames[b]
	}
	return fmt.Sprintf("BetaSchedule(%d)", int(b))
}

// ParseBetaSchedule reads a schedule name (diffusers' "squaredcos_cap_v2"
// is Cosine).
func ParseBetaSchedule(name string) (BetaSchedule, error) {
	if name == "squaredcos_cap_v2" {
		return Cosine, nil
	}
	for i, n := range betaScheduleNames {
		if n == name {
			return BetaSchedule(i), nil
		}
	}
	return Linear, fmt.Errorf("unknown schedule %q (want one of %s)", name, strings.Join(BetaSchedules, ", "))
}

// MarshalText writes the name.
func (b BetaSchedule) MarshalText() ([]byte, error) {
	if b < 0 || int(b) >= len(betaScheduleNames) {
		return nil, fmt.Errorf("invalid %v", b)
	}
	return []byte(b.String()), nil
}

// UnmarshalText reads a name.
func (b *BetaSchedule) UnmarshalText(t []byte) error {
	v, err := ParseBetaSchedule(string(t))
	if err == nil {
		*b = v
	}
	return err
}

// Set implements flag.Value.
func (b *BetaSchedule) Set(name string) error { return b.UnmarshalText([]byte(name)) }

// SamplerKind names a sampler of the DDPM checkpoints (NewSampler).
type SamplerKind int

// The samplers of NewSampler.
const (
	SamplerDDPM      SamplerKind = iota // ancestral, the posterior's variance (Ho et al.)
	SamplerDDPMLarge                    // ancestral, variance β
	SamplerDDIM                         // DDIM with its η (Song et al.)
	SamplerDPMPP2M                      // DPM-Solver++(2M) (Lu et al.)
)

var samplerNames = [...]string{"ddpm", "ddpm-large", "ddim", "dpm++2m"}

// SamplerNames are the names ParseSampler takes.
var SamplerNames = samplerNames[:]

func (k SamplerKind) String() string { return enumName(samplerNames[:], int(k), "SamplerKind") }

// ParseSampler reads a sampler name.
func ParseSampler(name string) (SamplerKind, error) {
	i, err := enumParse(samplerNames[:], name, "sampler")
	return SamplerKind(i), err
}

// Set implements flag.Value.
func (k *SamplerKind) Set(name string) (err error) { *k, err = ParseSampler(name); return err }

// SigmaSamplerKind names a sampler of the diffusers-style pipelines
// (NewSigmaSampler). The zero value is the pipelines' default,
// DPM-Solver++(2M) with Karras σs.
type SigmaSamplerKind int

// The samplers of NewSigmaSampler.
const (
	DefaultSigmaSampler SigmaSamplerKind = iota // dpm++2m-karras
	SigmaDDIM                                   // diffusers' DDIMScheduler
	SigmaEuler                                  // Euler (Karras et al.)
	SigmaEulerKarras                            // Euler on Karras σs
	SigmaEulerAncestral                         // Euler ancestral
	SigmaDPMPP2M                                // DPM-Solver++(2M)
	SigmaDPMPP2MKarras                          // DPM-Solver++(2M) on Karras σs
)

var sigmaSamplerNames = [...]string{"", "ddim", "euler", "euler-karras", "euler-a", "dpm++2m", "dpm++2m-karras"}

// A1111-style front-ends' names of the samplers (written into PNG parameters).
var sigmaSamplerLabels = [...]string{"", "DDIM", "Euler", "Euler Karras", "Euler a", "DPM++ 2M", "DPM++ 2M Karras"}

// SigmaSamplerNames are the names ParseSigmaSampler takes (besides the
// aliases euler_a, euler-ancestral, dpmpp2m and dpmpp2m-karras).
var SigmaSamplerNames = sigmaSamplerNames[1:]

// Or returns k, or the default sampler for DefaultSigmaSampler.
func (k SigmaSamplerKind) Or() SigmaSamplerKind {
	if k == DefaultSigmaSampler {
		return SigmaDPMPP2MKarras
	}
	return k
}

func (k SigmaSamplerKind) String() string {
	return enumName(sigmaSamplerNames[:], int(k.Or()), "SigmaSamplerKind")
}

// Label is the name A1111-style front-ends give the sampler.
func (k SigmaSamplerKind) Label() string {
	return enumName(sigmaSamplerLabels[:], int(k.Or()), "SigmaSamplerKind")
}

// ParseSigmaSampler reads a sampler name ("" is DefaultSigmaSampler).
func ParseSigmaSampler(name string) (SigmaSamplerKind, error) {
	switch name {
	case "euler_a", "euler-ancestral":
		name = "euler-a"
	case "dpmpp2m":
		name = "dpm++2m"
	case "dpmpp2m-karras":
		name = "dpm++2m-karras"
	}
	i, err := enumParse(sigmaSamplerNames[:], name, "sampler")
	return SigmaSamplerKind(i), err
}

// Set implements flag.Value.
func (k *SigmaSamplerKind) Set(name string) (err error) {
	*k, err = ParseSigmaSampler(name)
	return err
}

// MarshalText writes the sampler's name (DefaultSigmaSampler's as the
// sampler it stands for).
func (k SigmaSamplerKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a name as ParseSigmaSampler does.
func (k *SigmaSamplerKind) UnmarshalText(b []byte) error { return k.Set(string(b)) }

func enumName(names []string, i int, typ string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

func enumParse(names []string, name, what string) (int, error) {
	for i, n := range names {
		if n == name {
			return i, nil
		}
	}
	var valid []string
	for _, n := range names {
		if n != "" {
			valid = append(valid, n)
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want one of %s)", what, name, strings.Join(valid, ", "))
}
