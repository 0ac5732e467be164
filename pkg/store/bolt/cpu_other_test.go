//go:build !unix

package bolt_test

import "time"

// processCPU is the user and system CPU time this process has used, or -1.
func processCPU() time.Duration { return -1 }
