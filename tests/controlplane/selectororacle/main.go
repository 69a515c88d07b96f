// The selector oracle: apimachinery's own labels.Parse, to hold cred-helper's port
// (cred_helper/janitor/selector_text.py) to it. Reads one JSON object a line on stdin,
// {"selector": TEXT, "labels": [{KEY: VALUE, ...}, ...]}, and writes one a line on stdout:
// {"ok": false} when Parse refuses the text, else {"ok": true, "requirements":
// [[KEY, OPERATOR, [VALUE, ...]], ...], "matches": [BOOL, ...]}, one match per label set.
package main

import (
	"bufio"
	"encoding/json"
	"os"

	"k8s.io/apimachinery/pkg/labels"
)

type query struct {
	Selector string              `json:"selector"`
	Labels   []map[string]string `json:"labels"`
}

type answer struct {
	OK           bool    `json:"ok"`
	Requirements [][]any `json:"requirements,omitempty"`
	Matches      []bool  `json:"matches,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var q query
		if err := json.Unmarshal(in.Bytes(), &q); err != nil {
			panic(err)
		}
		selector, err := labels.Parse(q.Selector)
		a := answer{OK: err == nil}
		if err == nil {
			requirements, _ := selector.Requirements()
			a.Requirements = [][]any{}
			for _, r := range requirements {
				a.Requirements = append(a.Requirements,
					[]any{r.Key(), string(r.Operator()), r.Values().List()})
			}
			for _, set := range q.Labels {
				a.Matches = append(a.Matches, selector.Matches(labels.Set(set)))
			}
		}
		if err := out.Encode(a); err != nil {
			panic(err)
		}
	}
	if err := in.Err(); err != nil {
		panic(err)
	}
}
