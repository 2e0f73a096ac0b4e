package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deployment files describe this command, so their checks live with
// it; they sit at the repository's root, two levels up.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The deployment files cannot run here (no Docker engine); what can be
// checked is: the compose file parses and runs the gateway with
// PostgreSQL and Redis, every variable it reads is documented in
// .env.example, the image builds the command the README builds, and CI runs
// the README's test command.
func TestDeploymentFiles(t *testing.T) {
	read := func(name string) string { t.Helper(); return readRepoFile(t, name) }
	compose := read("docker-compose.yml")
	var doc struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   map[string]any    `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(compose), &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	gw, ok := doc.Services["llm-proxy"]
	if !ok || gw.Build == nil || gw.Environment["DB_TYPE"] != "postgres" {
		t.Errorf("compose has no gateway built from the Dockerfile on postgres: %+v", gw)
	}
	for _, dep := range []string{"postgres", "redis"} {
		if _, ok := doc.Services[dep]; !ok {
			t.Errorf("compose has no %s service", dep)
		}
		if _, ok := gw.DependsOn[dep]; !ok {
			t.Errorf("the gateway does not depend on %s", dep)
		}
	}
	env := read(".env.example")
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)`).FindAllStringSubmatch(compose, -1) {
		if !regexp.MustCompile(`(?m)^#? ?` + m[1] + `=`).MatchString(env) {
			t.Errorf("compose reads %s, which .env.example does not document", m[1])
		}
	}
	docker, readme, ci := read("Dockerfile"), read("README.md"), read(".ci/run")
	for _, want := range []string{"CGO_ENABLED=1", "./cmd/llm-proxy", "USER nonroot", "AS build"} {
		if !strings.Contains(docker, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !strings.Contains(readme, "go build -o llm-proxy ./cmd/llm-proxy") || !strings.Contains(readme, "./scripts/test.sh") || !strings.Contains(readme, "go run ./cmd/llm-proxy serve") {
		t.Error("README lacks the build, serve or test command")
	}
	if !strings.Contains(ci, "./scripts/test.sh") {
		t.Error(".ci/run does not run ./scripts/test.sh")
	}
}

// Every environment variable the command reads is documented in the
// README and in .env.example, which says it "documents every variable".
func TestEnvironmentDocumented(t *testing.T) {
	readme, env := readRepoFile(t, "README.md"), readRepoFile(t, ".env.example")
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`\b(?:getenv|e\.env)\("([A-Z][A-Z0-9_]*)"`)
	seen := map[string]bool{}
	for _, name := range sources {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
	}
	if !seen["MASTER_KEY"] || !seen["METRICS_TOKEN"] {
		t.Fatalf("found only %v in the command's sources: the pattern no longer matches how they read the environment", seen)
	}
	word := func(doc, v string) bool { return regexp.MustCompile(`\b` + v + `\b`).MatchString(doc) }
	for v := range seen {
		if !word(readme, v) {
			t.Errorf("the command reads %s, which README.md does not mention", v)
		}
		if !word(env, v) {
			t.Errorf("the command reads %s, which .env.example does not mention", v)
		}
	}
}

// README's Layout names every package of the tree, one line each.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	_, layout, _ := strings.Cut(readme, "\n## Layout\n")
	_, layout, _ = strings.Cut(layout, "```\n")
	layout, _, _ = strings.Cut(layout, "```")
	listed := map[string]bool{}
	for line := range strings.Lines(layout) {
		if f := strings.Fields(line); len(f) > 1 {
			listed[strings.TrimSuffix(f[0], "/")] = true
		}
	}
	root := filepath.Join("..", "..")
	packages := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir // what the go command ignores, and npm's
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			packages[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !packages["."] || !packages["cmd/llm-proxy"] || len(listed) < len(packages)/2 {
		t.Fatalf("found packages %v, listed %v: the test no longer reads the tree or the README", packages, listed)
	}
	for p := range packages {
		if !listed[p] {
			t.Errorf("README's Layout does not list the package %s/", p)
		}
	}
}
