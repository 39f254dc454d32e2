// Package doctor checks a provisioner configuration against the real parts it names, the way `run`
// would use them, without changing anything: NATS and the permissions the worker needs, the streams,
// consumer and ledger bucket, each secret backend, and the Airbyte token mint. Every check ends in one
// line: ok, or what is wrong and what to do.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/provisioner-dev/provisioner/internal/airbyte"
	"github.com/provisioner-dev/provisioner/internal/app"
	"github.com/provisioner-dev/provisioner/internal/config"
	"github.com/provisioner-dev/provisioner/internal/consumer"
	"github.com/provisioner-dev/provisioner/internal/vault"
)

// Check is the verdict of one check.
type Check struct {
	Name string
	OK   bool
	// Detail says what was found (ok) or what is wrong (not ok).
	Detail string
	// Fix says what to do; only when not ok.
	Fix string
}

// String is the check's one line.
func (c Check) String() string {
	if c.OK {
		return "ok    " + c.Name + ": " + c.Detail
	}
	return "FAIL  " + c.Name + ": " + c.Detail + " — " + c.Fix
}

// Options are what a process gives the doctor beyond the configuration.
type Options struct {
	Logger *slog.Logger
	// Timeout bounds each probe; default 5s.
	Timeout   time.Duration
	UserAgent string
}

// Report is every check, in the order they ran.
type Report struct{ Checks []Check }

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Write prints one line per check.
func (r Report) Write(w io.Writer) error {
	for _, c := range r.Checks {
		if _, err := fmt.Fprintln(w, c.String()); err != nil {
			return err
		}
	}
	return nil
}

// errCodeStreamNotMatch is JetStream's "expected stream does not match": the answer to a publish
// whose Nats-Expected-Stream names another stream. nats.go has no constant for it.
const errCodeStreamNotMatch jetstream.ErrorCode = 10060

// probeWorkspace is the workspace name of the secret probes: a valid name no customer is likely
// to have, read (never written) to learn whether the backend answers and lets the worker read there.
const probeWorkspace = "provisioner-doctor"

// Run runs every check of cfg (already validated, as run validates it).
func Run(ctx context.Context, cfg config.Config, opts Options) Report {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	d := &doctor{cfg: cfg, opts: opts, topo: app.Topology(cfg), changed: make(chan struct{})}
	d.checkNATS(ctx)
	store := d.checkSecrets(ctx)
	d.checkAirbyte(ctx, store)
	if store != nil {
		_ = store.Close()
	}
	return Report{Checks: d.checks}
}

type doctor struct {
	cfg    config.Config
	opts   Options
	topo   consumer.Topology
	checks []Check

	mu         sync.Mutex
	violations []string      // subjects the server refused, from its asynchronous errors
	changed    chan struct{} // closed and replaced when a violation arrives
}

func (d *doctor) ok(name, format string, a ...any) {
	d.checks = append(d.checks, Check{Name: name, OK: true, Detail: fmt.Sprintf(format, a...)})
}

func (d *doctor) fail(name, detail, fix string) {
	d.checks = append(d.checks, Check{Name: name, Detail: detail, Fix: fix})
}

// ---- NATS

func (d *doctor) checkNATS(ctx context.Context) {
	if d.cfg.NATSURL == "" {
		d.checkEmbedded()
		return
	}
	nc, err := app.Connect(d.cfg, d.cfg.NATSURL, "provisioner-doctor", d.opts.Logger, nil,
		nats.Timeout(d.opts.Timeout),
		nats.MaxReconnects(0),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { d.noteViolation(err) }))
	if err != nil {
		cause := err
		if u := errors.Unwrap(err); u != nil {
			cause = u // app.Connect's own prefix repeats the check's name
		}
		d.fail("nats", "cannot connect to "+app.RedactURL(d.cfg.NATSURL)+": "+strings.TrimPrefix(cause.Error(), "nats: "), natsConnectFix(err))
		return
	}
	defer nc.Close()
	d.ok("nats", "connected to %s (server %s %s)", app.RedactURL(nc.ConnectedUrl()), nc.ConnectedServerName(), nc.ConnectedServerVersion())

	js, err := jetstream.New(nc)
	if err != nil {
		d.fail("jetstream", err.Error(), "report this as a bug")
		return
	}
	var info *jetstream.AccountInfo
	err = d.call(ctx, func(ctx context.Context) (err error) {
		info, err = js.AccountInfo(ctx)
		return err
	}, "$JS.API.INFO")
	if err != nil {
		d.fail("jetstream", "account info: "+err.Error(),
			"enable JetStream for the account the worker's user belongs to, and allow it to publish to $JS.API.INFO")
		return
	}
	d.ok("jetstream", "enabled (domain %q, %d streams, %d consumers in the account)", info.Domain, info.Streams, info.Consumers)

	d.checkStreams(ctx, js)
	d.checkPermissions(ctx, nc, js)
}

func (d *doctor) checkEmbedded() {
	name := "nats"
	if err := app.ProbeListen(d.cfg.NATSListen); err != nil {
		d.fail(name, err.Error(), "free the address or choose another --nats-listen (or give --nats-url to use a NATS server)")
		return
	}
	if err := os.MkdirAll(d.cfg.NATSStoreDir, 0o750); err != nil {
		d.fail(name, "--nats-store-dir: "+err.Error(), "give --nats-store-dir a directory the worker may write")
		return
	}
	f, err := os.CreateTemp(d.cfg.NATSStoreDir, ".doctor-*")
	if err != nil {
		d.fail(name, "--nats-store-dir: "+err.Error(), "give --nats-store-dir a directory the worker may write")
		return
	}
	f.Close()
	os.Remove(f.Name())
	d.ok(name, "--nats-url is empty: run starts an embedded server on %s with its store in %s (both usable)", d.cfg.NATSListen, d.cfg.NATSStoreDir)
}

// checkStreams compares the streams, the consumer and the bucket with what this configuration would
// make them (consumer.Verify, the comparison run starts with) and fails on what run would refuse.
func (d *doctor) checkStreams(ctx context.Context, js jetstream.JetStream) {
	policy := consumer.ConsumerPolicy{AckWait: d.cfg.AckWait, MaxDeliver: d.cfg.MaxDeliver, MaxAckPending: d.cfg.MaxAckPending}
	var drifts []consumer.Drift
	err := d.call(ctx, func(ctx context.Context) (err error) {
		drifts, err = consumer.Verify(ctx, js, d.topo, policy)
		return err
	}, "$JS.API.STREAM.INFO.", "$JS.API.CONSUMER.INFO.")
	if err != nil {
		d.fail("streams", err.Error(), "allow the worker's user to publish to $JS.API.STREAM.INFO.* and $JS.API.CONSUMER.INFO.* of its streams (deploy/nats)")
		return
	}
	mode := app.SetupMode(d.cfg)
	objects := []string{"stream " + d.topo.RequestsStream, "stream " + d.topo.ResultsStream, "stream " + d.topo.DLQStream, "consumer " + d.topo.Consumer}
	if d.topo.LedgerBucket != "" {
		objects = append(objects, "bucket "+d.topo.LedgerBucket)
	}
	for _, obj := range objects {
		var refused, applied, tolerated []string
		reconcilable := mode != consumer.VerifyOnly
		for _, dr := range drifts {
			if dr.Object != obj {
				continue
			}
			// the same decision as consumer.SetupWith makes at start-up
			switch {
			case dr.Kind == consumer.DriftIncompatible:
				refused, reconcilable = append(refused, dr.Error()), false
			case mode == consumer.VerifyOnly && (dr.Kind == consumer.DriftMissing || strings.HasPrefix(obj, "consumer ")):
				refused, reconcilable = append(refused, dr.Error()), false
			case mode == consumer.VerifyOnly:
				tolerated = append(tolerated, dr.Error())
			case dr.Kind == consumer.DriftShared && mode != consumer.Reconcile:
				refused = append(refused, dr.Error())
			case dr.Kind == consumer.DriftMissing:
				applied = append(applied, "missing; run creates it at start")
			default:
				applied = append(applied, dr.Error())
			}
		}
		switch {
		case len(refused) > 0:
			fix := "make the object and the worker's settings agree: run refuses this drift (and changes none of it)"
			if reconcilable {
				fix = "give this replica the settings the others share, or start it once with --reconcile-streams to apply its own"
			} else if mode == consumer.VerifyOnly {
				fix = "create or fix it as run needs it (--manage-streams=false: the platform team's streams), or let run manage it"
			}
			d.fail(obj, strings.Join(trimObject(obj, refused), "; "), fix)
		case len(applied) > 0:
			d.ok(obj, "run will change it: %s", strings.Join(trimObject(obj, applied), "; "))
		case len(tolerated) > 0:
			d.ok(obj, "differs, left as the platform made it: %s", strings.Join(trimObject(obj, tolerated), "; "))
		default:
			d.ok(obj, "as run would make it")
		}
	}
}

// trimObject drops the object's name from the front of drift messages printed on its own line.
func trimObject(obj string, msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = strings.TrimPrefix(strings.TrimPrefix(m, obj+": "), obj+" ")
	}
	return out
}

// checkPermissions tries the subjects the worker publishes to and the APIs it calls, each in a way
// that changes nothing: a publish that the stream refuses because it names another stream, a pull
// that asks for at most one byte (so no request is delivered), a read of a key nobody writes.
func (d *doctor) checkPermissions(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) {
	for _, p := range []struct{ what, subject string }{
		{"publish results", d.topo.ResultSubject("source_created", "doctor-probe")},
		{"publish dead letters", d.topo.DLQSubject("credentials.submitted")},
		{"write the ledger", "$KV." + d.cfg.LedgerBucket + ".doctor"},
	} {
		name := "permission to " + p.what
		msg := nats.NewMsg(p.subject)
		msg.Header.Set(jetstream.ExpectedStreamHeader, "PROVISIONER_DOCTOR_PROBE")
		err := d.call(ctx, func(ctx context.Context) error {
			_, err := js.PublishMsg(ctx, msg)
			return err
		}, p.subject)
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamNotMatch:
			d.ok(name, "%s reaches its stream", p.subject)
		case err == nil:
			d.fail(name, p.subject+": a probe was stored although it named another stream", "report this as a bug")
		case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
			d.fail(name, p.subject+": no stream stores it", "start `provisioner run` once (it creates the streams and the bucket)")
		default:
			d.fail(name, about(p.subject, err), "allow the worker's user to publish to "+p.subject)
		}
	}

	name := "permission to pull requests"
	api := "$JS.API.CONSUMER.MSG.NEXT." + d.topo.RequestsStream + "." + d.topo.Consumer
	var reply *nats.Msg
	err := d.call(ctx, func(ctx context.Context) (err error) {
		reply, err = nc.RequestWithContext(ctx, api, []byte(`{"batch":1,"max_bytes":1,"no_wait":true}`))
		return err
	}, api)
	switch {
	case err == nil && reply.Header.Get("Status") != "":
		d.ok(name, "%s answers (%s %s)", api, reply.Header.Get("Status"), reply.Header.Get("Description"))
	case err == nil:
		d.fail(name, api+" delivered a request to the probe", "report this as a bug")
	case errors.Is(err, nats.ErrNoResponders):
		d.fail(name, api+": the consumer does not exist", "start `provisioner run` once (it creates it)")
	default:
		d.fail(name, about(api, err), "allow the worker's user to publish to "+api+" and $JS.ACK."+d.topo.RequestsStream+".>")
	}

	name = "permission to read the ledger"
	err = d.call(ctx, func(ctx context.Context) error {
		kv, err := js.KeyValue(ctx, d.cfg.LedgerBucket)
		if err == nil {
			_, err = kv.Get(ctx, "doctor.probe")
		}
		return err
	}, "$JS.API.STREAM.INFO.KV_"+d.cfg.LedgerBucket, "$JS.API.DIRECT.GET.KV_"+d.cfg.LedgerBucket, "$JS.API.STREAM.MSG.GET.KV_"+d.cfg.LedgerBucket)
	switch {
	case err == nil || errors.Is(err, jetstream.ErrKeyNotFound):
		d.ok(name, "bucket %s answers reads", d.cfg.LedgerBucket)
	default:
		d.fail(name, err.Error(), "allow the worker's user to publish to $JS.API.STREAM.INFO.KV_"+d.cfg.LedgerBucket+", $JS.API.DIRECT.GET.KV_"+d.cfg.LedgerBucket+".> and $JS.API.STREAM.MSG.GET.KV_"+d.cfg.LedgerBucket)
	}
}

// permissionDenied is the server refusing a subject to the user.
type permissionDenied struct{ op string }

func (e permissionDenied) Error() string { return "permission denied for " + e.op }

// about is err about subject; a refusal names the subject itself.
func about(subject string, err error) string {
	var pd permissionDenied
	if errors.As(err, &pd) {
		return err.Error()
	}
	return subject + ": " + err.Error()
}

// noteViolation records a permission violation the server sent (asynchronously: a refused publish
// has no reply, so the request it belonged to would otherwise only time out).
func (d *doctor) noteViolation(err error) {
	const marker = "Permissions Violation for "
	msg := err.Error()
	i := strings.Index(msg, marker)
	if i < 0 {
		return
	}
	op := strings.Trim(msg[i+len(marker):], "' ")
	op = strings.ToLower(op[:1]) + op[1:] // publish to "subject"
	d.mu.Lock()
	d.violations = append(d.violations, op)
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// call runs fn within the probe timeout, and ends it as soon as the server refuses one of the
// subjects it publishes to (or the reply subscription).
func (d *doctor) call(ctx context.Context, fn func(context.Context) error, subjects ...string) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	d.mu.Lock()
	seen := len(d.violations)
	d.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	for {
		d.mu.Lock()
		changed := d.changed
		var refused string
		for _, op := range d.violations[seen:] {
			for _, subj := range append(subjects, "_INBOX.") {
				if strings.Contains(op, `"`+subj) {
					refused = op
				}
			}
		}
		d.mu.Unlock()
		if refused != "" {
			cancel()
			<-done
			return permissionDenied{op: refused}
		}
		select {
		case err := <-done:
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("no answer within %s (a subject the user may not publish to, or a NATS server under strain)", d.opts.Timeout)
			}
			return err
		case <-changed:
		}
	}
}

func natsConnectFix(err error) string {
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return "check --nats-creds, --nats-user/--nats-password or --nats-token"
	case errors.Is(err, nats.ErrNoServers):
		return "check --nats-url and that the server is running and reachable from here"
	case strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "x509"):
		return "check --nats-tls-ca, --nats-tls-cert and --nats-tls-key"
	}
	return "check --nats-url and the NATS credentials"
}

// ---- secret backends

// checkSecrets checks each backend on its own and, for the Airbyte client secret reference, returns
// a store of all of them (nil without a reference, or if a backend failed).
func (d *doctor) checkSecrets(ctx context.Context) *vault.Store {
	full := d.cfg.VaultStoreConfig()
	probePath := d.probePath()
	type backend struct {
		name   string
		cfg    vault.Config
		probe  string
		detail string
	}
	var backends []backend
	if full.FileDir != "" {
		abs, _ := filepath.Abs(full.FileDir)
		backends = append(backends, backend{"secrets file", vault.Config{FileDir: full.FileDir}, "file:" + probePath, "directory " + abs})
	}
	if full.EnvEnabled {
		backends = append(backends, backend{"secrets env", vault.Config{EnvEnabled: true, EnvPrefix: full.EnvPrefix}, "", "on, prefix " + fmt.Sprintf("%q", full.EnvPrefix)})
	}
	if full.Vault.Addr != "" {
		backends = append(backends, backend{"secrets vault", vault.Config{Vault: full.Vault}, "vault:" + probePath, full.Vault.Addr + ", " + full.Vault.Auth + " auth, mount " + full.Vault.Mount})
	}
	healthy := true
	for _, b := range backends {
		callCtx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
		store, err := vault.New(callCtx, b.cfg, d.opts.Logger)
		if err != nil {
			cancel()
			healthy = false
			d.fail(b.name, err.Error(), secretFix(b.name, err))
			continue
		}
		if b.probe != "" {
			ref, perr := vault.ParseRef(b.probe)
			if perr == nil {
				_, err = store.Get(callCtx, ref)
			}
		}
		cancel()
		_ = store.Close()
		var nf *vault.NotFoundError
		switch {
		case b.probe == "" || err == nil || errors.As(err, &nf):
			d.ok(b.name, "%s: reachable, may read under %s", b.detail, probePath)
		default:
			healthy = false
			d.fail(b.name, b.detail+": "+err.Error(), secretFix(b.name, err))
		}
	}
	if !healthy || d.cfg.AirbyteClientSecretRef == "" {
		return nil // only the client secret reference needs every backend at once
	}
	store, err := vault.New(ctx, full, d.opts.Logger)
	if err != nil {
		return nil
	}
	return store
}

// probePath is where the probes read: under the policy's prefix for the probe workspace.
func (d *doctor) probePath() string {
	tmpl := d.cfg.SecretPathPolicy
	if tmpl == config.NoSecretPathPolicy || tmpl == "" {
		return probeWorkspace + "/doctor-probe.json"
	}
	return strings.TrimSuffix(strings.ReplaceAll(tmpl, vault.WorkspacePlaceholder, probeWorkspace), "/") + "/doctor-probe.json"
}

func secretFix(name string, err error) string {
	var pd *vault.PermissionError
	var un *vault.UnavailableError
	switch {
	case errors.As(err, &pd):
		return "grant the worker read access to the secret paths (deploy/vault/provisioner.hcl is the policy it needs)"
	case errors.As(err, &un):
		return "check that the backend is reachable from here and ready (Vault unsealed; address, TLS, network policy)"
	case strings.Contains(name, "file"):
		return "check --secrets-dir: it must be a directory the worker may read"
	case strings.Contains(name, "vault"):
		return "check --vault-addr and the auth settings (--vault-auth and its role, token or secret id)"
	}
	return "check the backend's settings"
}

// ---- Airbyte

func (d *doctor) checkAirbyte(ctx context.Context, store *vault.Store) {
	clientSecret := d.cfg.AirbyteClientSecret
	if ref := d.cfg.AirbyteClientSecretRef; ref != "" {
		if store == nil {
			d.fail("airbyte client secret", "--airbyte-client-secret-ref "+ref+" cannot be read: a secret backend above failed", "fix the secret backend first")
			return
		}
		callCtx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
		v, err := vault.ResolveValue(callCtx, store, ref)
		cancel()
		if err != nil {
			d.fail("airbyte client secret", "--airbyte-client-secret-ref "+ref+": "+err.Error(), "store the client secret there, or fix the reference")
			return
		}
		clientSecret = v
		d.ok("airbyte client secret", "read from %s", ref)
	}
	client, err := airbyte.New(airbyte.Config{
		BaseURL: d.cfg.AirbyteURL, ClientID: d.cfg.AirbyteClientID, ClientSecret: clientSecret,
		OrganizationID: d.cfg.AirbyteOrganizationID, Timeout: d.cfg.AirbyteTimeout, UserAgent: d.opts.UserAgent,
		Logger: d.opts.Logger,
	})
	if err != nil {
		d.fail("token mint", err.Error(), "check the --airbyte-* settings")
		return
	}
	defer client.CloseIdleConnections()
	callCtx, cancel := context.WithTimeout(ctx, max(d.opts.Timeout, 2*d.cfg.AirbyteTimeout))
	tok, err := client.ApplicationToken(callCtx)
	cancel()
	if err != nil {
		d.fail("token mint", err.Error(), airbyteFix(err))
		return
	}
	if tok.IsZero() {
		d.fail("token mint", "the mint answered an empty token", "check --airbyte-url: it does not look like the Airbyte API")
		return
	}
	d.ok("token mint", "minted an application token at %s for client %s", d.cfg.AirbyteURL, d.cfg.AirbyteClientID)
}

func airbyteFix(err error) string {
	var apiErr *airbyte.APIError
	var trErr *airbyte.TransportError
	switch {
	case errors.As(err, &apiErr) && (apiErr.StatusCode == 401 || apiErr.StatusCode == 403):
		return "check --airbyte-client-id and the client secret (--airbyte-client-secret or --airbyte-client-secret-ref)"
	case errors.As(err, &apiErr):
		return "check --airbyte-url and --airbyte-organization-id"
	case errors.As(err, &trErr):
		return "check --airbyte-url and that it is reachable from here (DNS, proxy, network policy)"
	}
	return "check the --airbyte-* settings"
}
