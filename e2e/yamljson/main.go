// Command yamljson prints what Kubernetes makes of YAML documents: sigs.k8s.io/yaml YAMLToJSONStrict, the
// converter kubectl and the apiserver use (with go.yaml.in/yaml/v2 underneath), for kubeward's differential test.
//
// Input on stdin: a JSON array of strings, one YAML document each. Output on stdout: a JSON array with, per
// document, {"json": <the JSON text>} or {"error": <message>}, plus "collision": true when two keys of one
// mapping became the same JSON key (the Go map then keeps one of them at random, so no single answer exists).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	goyaml "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

type answer struct {
	JSON      *string `json:"json,omitempty"`
	Error     *string `json:"error,omitempty"`
	Collision bool    `json:"collision,omitempty"`
}

// keys counts the mapping keys of a decoded value, nested ones included.
func keys(v interface{}) int {
	n := 0
	switch t := v.(type) {
	case map[interface{}]interface{}:
		n += len(t)
		for _, e := range t {
			n += keys(e)
		}
	case map[string]interface{}:
		n += len(t)
		for _, e := range t {
			n += keys(e)
		}
	case []interface{}:
		for _, e := range t {
			n += keys(e)
		}
	}
	return n
}

func one(doc string) (a answer) {
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprintf("panic: %v", r)
			a = answer{Error: &msg}
		}
	}()
	out, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		msg := err.Error()
		return answer{Error: &msg}
	}
	text := string(out)
	a = answer{JSON: &text}
	var decoded, converted interface{}
	if goyaml.Unmarshal([]byte(doc), &decoded) == nil && json.Unmarshal(out, &converted) == nil {
		a.Collision = keys(decoded) != keys(converted)
	}
	return a
}

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "yamljson:", err)
		os.Exit(2)
	}
	var docs []string
	if err := json.Unmarshal(in, &docs); err != nil {
		fmt.Fprintln(os.Stderr, "yamljson: input must be a JSON array of strings:", err)
		os.Exit(2)
	}
	answers := make([]answer, len(docs))
	for i, d := range docs {
		answers[i] = one(d)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(answers); err != nil {
		fmt.Fprintln(os.Stderr, "yamljson:", err)
		os.Exit(2)
	}
}
