package awstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildTool builds the command pkg (an import path) of the tools module,
// tools/ beside the main module's go.mod, into the file out, at the
// versions tools/go.mod and tools/go.sum pin. The go command downloads
// what it lacks from the module proxy.
func BuildTool(pkg, out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 || string(bytes.TrimSpace(gomod)) == os.DevNull {
		return fmt.Errorf("building %s: cannot find the main module (go env GOMOD: %v)", pkg, err)
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join(filepath.Dir(string(bytes.TrimSpace(gomod))), "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s in the tools module (tools/go.mod): %v\n%s", pkg, err, b)
	}
	return nil
}
