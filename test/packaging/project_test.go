package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// project is the part of kubebuilder's PROJECT file checked here.
type project struct {
	Domain    string   `json:"domain"`
	Layout    []string `json:"layout"`
	Repo      string   `json:"repo"`
	Resources []struct {
		Controller bool   `json:"controller"`
		Domain     string `json:"domain"`
		Group      string `json:"group"`
		Kind       string `json:"kind"`
		Path       string `json:"path"`
		Version    string `json:"version"`
	} `json:"resources"`
}

// PROJECT describes the tree as it is: a layout it declares is the one the code follows, its
// module and API packages, groups and kinds exist.
func TestProjectFileMatchesTheTree(t *testing.T) {
	var p project
	if err := yaml.Unmarshal([]byte(read(t, "PROJECT")), &p); err != nil {
		t.Fatal(err)
	}
	top := mustRoot(t)
	exists := func(rel string) bool { _, err := os.Stat(filepath.Join(top, rel)); return err == nil }
	// go.kubebuilder.io/v4 puts the manager in cmd/main.go and the reconcilers in
	// internal/controller (the operator here: cmd/manager and controllers/).
	if slices.Contains(p.Layout, "go.kubebuilder.io/v4") && !(exists("cmd/main.go") && exists("internal/controller")) {
		t.Errorf("PROJECT declares layout go.kubebuilder.io/v4, but there is no cmd/main.go and internal/controller/")
	}
	module := regexp.MustCompile(`(?m)^module (\S+)$`).FindStringSubmatch(read(t, "go.mod"))
	if module == nil || p.Repo != module[1] {
		t.Errorf("PROJECT repo %q, go.mod module %v", p.Repo, module)
	}
	if len(p.Resources) == 0 {
		t.Fatal("PROJECT lists no resources")
	}
	for _, r := range p.Resources {
		dir, ok := strings.CutPrefix(r.Path, p.Repo+"/")
		if !ok || !exists(dir) || filepath.Base(dir) != r.Version {
			t.Errorf("resource %s: path %q is not a package of this module ending in its version %s", r.Kind, r.Path, r.Version)
			continue
		}
		if want := "+groupName=" + r.Group + "." + r.Domain + "\n"; !strings.Contains(read(t, filepath.Join(dir, "groupversion_info.go")), want) {
			t.Errorf("resource %s: %s/groupversion_info.go has no %q", r.Kind, dir, strings.TrimSpace(want))
		}
		types, err := os.ReadFile(filepath.Join(top, dir, strings.ToLower(r.Kind)+"_types.go"))
		if err != nil || !strings.Contains(string(types), "type "+r.Kind+" struct") {
			t.Errorf("resource %s: no type %s in %s: %v", r.Kind, r.Kind, dir, err)
		}
		if r.Controller && !exists(filepath.Join("controllers", strings.ToLower(r.Kind)+"_controller.go")) {
			t.Errorf("resource %s: controller: true, but there is no controllers/%s_controller.go", r.Kind, strings.ToLower(r.Kind))
		}
	}
}
