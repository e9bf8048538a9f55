package metrics

import (
	"fmt"
	"strconv"

	"github.com/godiffuse/godiffuse/safetensors"
)

// SaveStats writes s as a safetensors file (mu [D] and sigma [D, D] in F64,
// the feature network and the sample count in the metadata), atomically.
func SaveStats(path string, s *Stats) error {
	if err := s.check("saved"); err != nil {
		return err
	}
	d := s.Dim()
	return safetensors.Write(path, []safetensors.Tensor{
		{Name: "mu", DType: safetensors.F64, Shape: []int{d}, D: s.Mu},
		{Name: "sigma", DType: safetensors.F64, Shape: []int{d, d}, D: s.Sigma},
	}, map[string]string{"format": "godiffuse-stats", "feature": s.Feature, "n": strconv.Itoa(s.N)})
}

// LoadStats reads statistics written by SaveStats.
func LoadStats(path string) (*Stats, error) {
	st, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	if st.Metadata["format"] != "godiffuse-stats" {
		return nil, fmt.Errorf("%s: not a statistics file (metadata format = %q, want \"godiffuse-stats\")", path, st.Metadata["format"])
	}
	feature := st.Metadata["feature"]
	if feature == "" {
		return nil, fmt.Errorf("%s: metadata field \"feature\" is missing", path)
	}
	n, err := strconv.Atoi(st.Metadata["n"])
	if err != nil || n < 2 {
		return nil, fmt.Errorf("%s: metadata field \"n\" = %q (want a sample count ≥ 2)", path, st.Metadata["n"])
	}
	mu, ms, err := st.Float64("mu")
	if err != nil {
		return nil, err
	}
	sigma, ss, err := st.Float64("sigma")
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 || len(ss) != 2 || ss[0] != ms[0] || ss[1] != ms[0] {
		return nil, fmt.Errorf("%s: mu %v and sigma %v (want [D] and [D, D])", path, ms, ss)
	}
	s := &Stats{Feature: feature, N: n, Mu: mu, Sigma: sigma}
	if err := s.check(path); err != nil {
		return nil, err
	}
	return s, nil
}
