package runner_test

import (
	"os"
	"strings"
	"testing"
)

// The README's Go snippet is the body of Example, line for line, so the
// documented code is code that runs.
func TestReadmeSnippetIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "## Resolving from a loop runner")
	if i < 0 {
		t.Fatal(`README.md has no "Resolving from a loop runner" section`)
	}
	j := strings.Index(s[i:], "```go\n")
	if j < 0 {
		t.Fatal("the section has no Go snippet")
	}
	snippet := s[i+j+len("```go\n"):]
	snippet = snippet[:strings.Index(snippet, "```")]
	var indented strings.Builder
	for _, line := range strings.SplitAfter(snippet, "\n") {
		if strings.TrimSpace(line) != "" {
			indented.WriteString("\t")
		}
		indented.WriteString(line)
	}
	if !strings.Contains(string(example), indented.String()) {
		t.Errorf("the README's snippet is not the body of Example in example_test.go; copy one into the other:\n%s", snippet)
	}
}
