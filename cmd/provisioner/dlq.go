package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/provisioner-dev/provisioner/internal/consumer"
)

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay" && args[0] != "purge") {
		return usagef("usage: provisioner dlq list [--json] | provisioner dlq replay --id ID | --all | provisioner dlq purge [--id ID]")
	}
	sub, args := args[0], args[1:]
	var cf clientFlags
	fs := flag.NewFlagSet("provisioner dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	asJSON := fs.Bool("json", false, "list: one JSON object per line")
	limit := fs.Int("limit", 0, "list: at most this many (0 = all)")
	id := fs.Uint64("id", 0, "replay, purge: the dead letter's id (its sequence, as list shows); purge without it removes every dead letter")
	all := fs.Bool("all", false, "replay: every dead letter")
	if err := cf.parse(fs, args); err != nil {
		return err
	}
	if sub == "replay" && (*id == 0) == !*all {
		return usagef("replay needs exactly one of --id or --all")
	}
	nc, js, err := cf.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	dl := consumer.NewDeadLetters(js, cf.topology())
	switch sub {
	case "list":
		entries, err := dl.List(ctx, *limit)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if *asJSON {
				b, _ := json.Marshal(e)
				fmt.Fprintf(stdout, "%s\n", b)
				continue
			}
			fmt.Fprintf(stdout, "%d  %s  %s  request=%s reason=%s deliveries=%d: %s\n",
				e.ID, e.Time.Local().Format(time.DateTime), e.OriginalSubject, e.RequestID, e.Reason, e.Deliveries, e.Error)
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "%d dead letter(s)\n", len(entries))
		}
	case "purge":
		if *id != 0 {
			if err := dl.Delete(ctx, *id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "purged dead letter %d\n", *id)
			return nil
		}
		n, err := dl.Purge(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d dead letter(s)\n", n)
	case "replay":
		if *all {
			n, err := dl.ReplayAll(ctx)
			fmt.Fprintf(stdout, "replayed %d dead letter(s)\n", n)
			return err
		}
		if err := dl.Replay(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed dead letter %d\n", *id)
	}
	return nil
}
