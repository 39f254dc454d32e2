package main

import (
	"context"
	"io"
)

// runBench is replaced by the benchmark (issue 7).
func runBench(_ context.Context, _ []string, _, _ io.Writer) error {
	return usagef("bench is not built yet")
}
