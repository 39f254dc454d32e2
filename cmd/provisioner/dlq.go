package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/consumer"
)

// dlqSubcommands are the dlq subcommands, in help order.
var dlqSubcommands = []string{"list", "replay", "purge"}

var dlqHelp = map[string]help{
	"list": {
		usage: []string{"provisioner dlq list [--json] [--limit N] [flags]"},
		about: "List the dead letters: id, time, original subject, request id, reason, deliveries and error.",
		env:   true,
	},
	"replay": {
		usage: []string{"provisioner dlq replay --id ID | --all [flags]"},
		about: "Re-submit dead letters to their original subject with their original headers, then remove them from the DLQ.",
		env:   true,
	},
	"purge": {
		usage: []string{"provisioner dlq purge [--id ID] [flags]"},
		about: "Remove one dead letter, or every dead letter.",
		env:   true,
	},
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		for _, sub := range dlqSubcommands {
			dlqHelp[sub].write(stderr, dlqFlags(sub, new(dlqOptions)))
			fmt.Fprintln(stderr)
		}
		return flag.ErrHelp
	}
	if len(args) == 0 || dlqHelp[args[0]].usage == nil {
		return usagef("usage: provisioner dlq list [--json] | provisioner dlq replay --id ID | --all | provisioner dlq purge [--id ID] (provisioner dlq -h for the flags)")
	}
	sub, args := args[0], args[1:]
	var opts dlqOptions
	fs := dlqFlags(sub, &opts)
	dlqHelp[sub].install(fs, stderr)
	if err := opts.client.parse(fs, args); err != nil {
		return err
	}
	if sub == "replay" && (opts.id == 0) == !opts.all {
		return usagef("replay needs exactly one of --id or --all")
	}
	nc, js, err := opts.client.connect(stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	dl := consumer.NewDeadLetters(js, opts.client.topology())
	switch sub {
	case "list":
		entries, err := dl.List(ctx, opts.limit)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if opts.asJSON {
				b, _ := json.Marshal(e)
				fmt.Fprintf(stdout, "%s\n", b)
				continue
			}
			fmt.Fprintf(stdout, "%d  %s  %s  request=%s reason=%s deliveries=%d: %s\n",
				e.ID, e.Time.Local().Format(time.DateTime), e.OriginalSubject, e.RequestID, e.Reason, e.Deliveries, e.Error)
		}
		if !opts.asJSON {
			fmt.Fprintf(stdout, "%d dead letter(s)\n", len(entries))
		}
	case "purge":
		if opts.id != 0 {
			if err := dl.Delete(ctx, opts.id); err != nil {
				// JetStream's answer to deleting a missing message is a generic "delete failed":
				// ask whether the dead letter is there before saying anything
				if s, serr := js.Stream(ctx, opts.client.cfg.DLQStream); serr == nil {
					if _, gerr := s.GetMsg(ctx, opts.id); gerr != nil {
						return goneOr(gerr, opts.id)
					}
				}
				return err
			}
			fmt.Fprintf(stdout, "purged dead letter %d\n", opts.id)
			return nil
		}
		n, err := dl.Purge(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d dead letter(s)\n", n)
	case "replay":
		if opts.all {
			n, err := dl.ReplayAll(ctx)
			fmt.Fprintf(stdout, "replayed %d dead letter(s)\n", n)
			return err
		}
		if err := dl.Replay(ctx, opts.id); err != nil {
			return goneOr(err, opts.id)
		}
		fmt.Fprintf(stdout, "replayed dead letter %d\n", opts.id)
	}
	return nil
}

// goneOr says plainly that dead letter id is not there, or returns err.
func goneOr(err error, id uint64) error {
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrMsgNotFound) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound) {
		return fmt.Errorf("there is no dead letter %d: it was replayed or removed already, or never existed ('provisioner dlq list' shows the ones there are)", id)
	}
	return err
}

// dlqOptions are the settings of a dlq subcommand.
type dlqOptions struct {
	client clientFlags
	asJSON bool
	limit  int
	id     uint64
	all    bool
}

// dlqFlags registers the flags of one dlq subcommand, and only those.
func dlqFlags(sub string, o *dlqOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("provisioner dlq "+sub, flag.ContinueOnError)
	o.client.register(fs, dlqStreamFlag)
	switch sub {
	case "list":
		fs.BoolVar(&o.asJSON, "json", false, "one JSON object per line")
		fs.IntVar(&o.limit, "limit", 0, "at most this many (0 = all)")
	case "replay":
		fs.Uint64Var(&o.id, "id", 0, "the dead letter's id (its sequence, as list shows)")
		fs.BoolVar(&o.all, "all", false, "every dead letter")
	case "purge":
		fs.Uint64Var(&o.id, "id", 0, "the dead letter's id (its sequence, as list shows); without it every dead letter is removed")
	}
	return fs
}
