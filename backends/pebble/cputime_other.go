//go:build !unix

package pebble

import "time"

// processCPU returns -1: the process's CPU time is not read on this
// platform (see writer.gather).
func processCPU() time.Duration { return -1 }
