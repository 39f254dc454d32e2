package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/provisioner-dev/provisioner/contract"
)

var resultsHelp = help{
	usage: []string{"provisioner results [--json] [--all] [flags]", "provisioner results --id REQUEST_ID [--timeout 1m] [--json] [flags]"},
	about: "Follow the results stream and print each verdict once as it arrives (Ctrl-C stops), or print one\nrequest's verdict, waiting for it if needed.",
	env:   true,
}

func runResults(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := flag.NewFlagSet("provisioner results", flag.ContinueOnError)
	resultsHelp.install(fs, stderr)
	cf.register(fs, resultsStreamFlag)
	asJSON := fs.Bool("json", false, "print each result as one JSON line")
	all := fs.Bool("all", false, "start from the oldest stored result instead of new ones")
	id := fs.String("id", "", "print this request's verdict (waiting for it if needed) and exit: 0 success, 1 error verdict, 3 timeout")
	timeout := fs.Duration("timeout", time.Minute, "with --id: how long to wait for the verdict (0 = no limit)")
	if err := cf.parse(fs, args); err != nil {
		return err
	}
	if *id != "" && *all {
		return usagef("--id and --all do not go together")
	}
	nc, js, err := cf.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if *id != "" {
		c, err := cf.client(nc)
		if err != nil {
			return err
		}
		return awaitVerdict(ctx, c, *id, *timeout, *asJSON, stdout)
	}
	return followResults(ctx, js, cf.topology(), *all, *asJSON, stdout)
}

// printResult prints a result human-readably, or as its JSON line.
func printResult(w io.Writer, data []byte, asJSON bool) {
	if asJSON {
		fmt.Fprintf(w, "%s\n", data)
		return
	}
	var r contract.Result
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Fprintf(w, "unreadable result: %s\n", data)
		return
	}
	ts := r.ProducedAt.Local().Format(time.TimeOnly)
	switch {
	case r.Error != nil:
		fmt.Fprintf(w, "%s  %-19s request=%s workspace=%s code=%s retryable=%t: %s\n",
			ts, r.Message, r.RequestID, r.WorkspaceName, r.Error.Code, r.Error.Retryable, r.Error.Message)
	default:
		var d struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		_ = json.Unmarshal(r.Data, &d)
		what := ""
		if d.ID != "" {
			what = fmt.Sprintf(" connector=%s name=%q", d.ID, d.Name)
		}
		fmt.Fprintf(w, "%s  %-19s request=%s workspace=%s workspace_id=%s%s attempts=%d\n",
			ts, r.Message, r.RequestID, r.WorkspaceName, r.WorkspaceID, what, r.Attempts)
	}
}
