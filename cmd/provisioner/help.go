package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// help is what a subcommand's -h prints, in the one format every subcommand shares: the usage
// lines, what the command does, then its own flags (and only those), one per line.
type help struct {
	usage []string // "provisioner publish credentials|onboarded [flags]", ...
	about string
	// env says that every flag is also a PROVISIONER_* variable (true for the commands that read
	// run's configuration).
	env bool
}

// install makes fs print h on -h and after a flag error.
func (h help) install(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fs.Usage = func() { h.write(w, fs) }
}

func (h help) write(w io.Writer, fs *flag.FlagSet) {
	for i, u := range h.usage {
		lead := "usage: "
		if i > 0 {
			lead = "       "
		}
		fmt.Fprintf(w, "%s%s\n", lead, u)
	}
	if h.about != "" {
		fmt.Fprintf(w, "\n%s\n", h.about)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		if kind == "value" { // the secret flags
			kind = "string"
		}
		name := "--" + f.Name
		if kind != "" {
			name += " " + kind
		}
		if d := defaultText(f); d != "" {
			usage += " (default " + d + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	_ = tw.Flush()
	if h.env {
		fmt.Fprintln(w, "\nevery flag is also an environment variable: --nats-url is PROVISIONER_NATS_URL; flags win.")
	}
}

// defaultText is a flag's default as the help shows it; "" for zero values and secrets.
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "0s", "false", "[]":
		return ""
	}
	if _, ok := f.Value.(secretFlag); ok {
		return ""
	}
	if strings.ContainsAny(f.DefValue, " \t") {
		return fmt.Sprintf("%q", f.DefValue)
	}
	return f.DefValue
}
