// Command evaltable prints the JSON reports of `diffuse eval -json` as one
// markdown table (one row per report, in the order given), for
// bench/RESULTS.md:
//
//	go run ./bench/internal/evaltable evals/*.json
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"
)

type report struct {
	Features  string `json:"features"`
	Generated struct {
		Source   string  `json:"source"`
		N        int     `json:"n"`
		Sampler  string  `json:"sampler"`
		Steps    int     `json:"steps"`
		Guidance float64 `json:"guidance"`
	} `json:"generated"`
	Real    struct{ N int } `json:"real"`
	Metrics map[string]float64
	Seconds float64 `json:"seconds"`
}

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: evaltable REPORT.json …")
	}
	cols := []string{"FD-FMNIST", "FID", "class_accuracy", "IS", "KID", "precision", "recall"}
	var reps []report
	present := map[string]bool{}
	for _, path := range os.Args[1:] {
		raw, err := os.ReadFile(path)
		if err != nil {
			log.Fatal(err)
		}
		var r report
		if err := json.Unmarshal(raw, &r); err != nil {
			log.Fatalf("%s: %v", path, err)
		}
		for k := range r.Metrics {
			present[k] = true
		}
		reps = append(reps, r)
	}
	var use []string
	for _, c := range cols {
		if present[c] {
			use = append(use, c)
		}
	}
	fmt.Printf("| sampler | steps | guidance | samples | %s | seconds |\n", strings.Join(use, " | "))
	fmt.Printf("|%s\n", strings.Repeat(" --- |", 5+len(use)))
	for _, r := range reps {
		g := r.Generated
		var cells []string
		for _, c := range use {
			v, ok := r.Metrics[c]
			switch {
			case !ok:
				cells = append(cells, "–")
			case c == "class_accuracy" || c == "precision" || c == "recall":
				cells = append(cells, fmt.Sprintf("%.1f %%", 100*v))
			default:
				cells = append(cells, fmt.Sprintf("%.4g", v))
			}
		}
		fmt.Printf("| %s | %d | %g | %d | %s | %.0f |\n", g.Sampler, g.Steps, g.Guidance, g.N, strings.Join(cells, " | "), r.Seconds)
	}
}
