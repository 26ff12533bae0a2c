package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// globalFlags are shared by every subcommand; each has an env equivalent.
type globalFlags struct {
	redisURL    string
	s3          blob.Config
	cacheDir    string
	guestBucket string
	logLevel    string
	logFormat   string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "wasmjobs",
		Short: "Run image and text jobs through sandboxed WebAssembly guests at queue scale",
		Long: `wasmjobs runs image and text jobs through sandboxed WebAssembly guests.
Producers enqueue jobs into Redis in asynq's format; workers pull them, read the
input from S3-compatible storage, run a WASI guest on wazero and write the result back.

Every flag marked [$VAR] may also be set through that environment variable.`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			return g.setupLogging()
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL: redis://, rediss://, redis-socket://, redis-sentinel://[:password@]host:port,…?master=NAME or redis-cluster://host:port,…")
	f.StringVar(&g.s3.Endpoint, "s3-endpoint", "127.0.0.1:9000", "S3 endpoint host:port")
	f.StringVar(&g.s3.AccessKey, "s3-access-key", "", "S3 access key")
	f.StringVar(&g.s3.SecretKey, "s3-secret-key", "", "S3 secret key")
	f.StringVar(&g.s3.Region, "s3-region", "us-east-1", "S3 region")
	f.BoolVar(&g.s3.UseSSL, "s3-use-ssl", false, "use https for S3")
	f.BoolVar(&g.s3.IAM, "s3-iam", false, "without keys, also ask the EC2 instance metadata service for the role's credentials (AWS_* variables, ~/.aws/credentials, IRSA and container credentials are used without it)")
	f.StringVar(&g.cacheDir, "cache-dir", defaultCacheDir(), "compiled-guest cache directory; empty disables the disk cache")
	f.StringVar(&g.guestBucket, "guest-bucket", s3url.DefaultGuestBucket, "bucket holding registered guests")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	setEnv(f, "redis=REDIS_URL", "s3-endpoint=S3_ENDPOINT", "s3-access-key=S3_ACCESS_KEY", "s3-secret-key=S3_SECRET_KEY",
		"s3-region=S3_REGION", "s3-use-ssl=S3_USE_SSL", "s3-iam=S3_IAM", "cache-dir", "guest-bucket", "log-level", "log-format")

	root.AddCommand(
		newWorkerCmd(g),
		newEnqueueCmd(g),
		newRunCmd(g),
		newGuestCmd(g),
		newDevCmd(g),
		newBatchCmd(g),
		newWebCmd(g),
		newJobCmd(g),
	)
	nameEnv(root)
	return root
}

func (g *globalFlags) setupLogging() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return fmt.Errorf("--log-format %q: want text or json", g.logFormat)
	}
	// The Redis driver's own notes (every failed dial while Redis is
	// away) are debug detail: asynq and our callers log the errors that
	// matter, once each.
	redis.SetLogger(redisLog{})
	return nil
}

// redisLog passes the Redis driver's notes to slog at debug level.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

func (g *globalFlags) redisOpt() (asynq.RedisConnOpt, error) {
	for _, scheme := range []string{"redis-cluster://", "redis-sentinel://"} {
		rest, ok := strings.CutPrefix(g.redisURL, scheme)
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "?")
		// asynq connects these to database 0 and ignores a path: one naming
		// another database would write elsewhere than asked.
		if _, db, _ := strings.Cut(rest, "/"); db != "" && db != "0" {
			return nil, fmt.Errorf("--redis %s…: these URLs name no database (asynq uses database 0 there): drop /%s", scheme, db)
		}
	}
	if rest, ok := strings.CutPrefix(g.redisURL, "redis-cluster://"); ok {
		return parseClusterURL(rest)
	}
	opt, err := asynq.ParseRedisURI(g.redisURL)
	if err != nil {
		// asynq's parse errors quote the whole URL, password included.
		return nil, fmt.Errorf("--redis %q: %w", redactURL(g.redisURL), scrub(err, g.redisURL, urlPassword(g.redisURL)))
	}
	return opt, nil
}

// parseClusterURL parses the part after "redis-cluster://":
// [user:password@]host:port,host:port,…
func parseClusterURL(rest string) (asynq.RedisConnOpt, error) {
	var opt asynq.RedisClusterClientOpt
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, pass, _ := strings.Cut(rest[:at], ":")
		opt.Username, opt.Password = user, pass
		rest = rest[at+1:]
	}
	rest, _, _ = strings.Cut(rest, "/")
	for _, addr := range strings.Split(rest, ",") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--redis redis-cluster://…: node %q: want host:port", addr)
		}
		opt.Addrs = append(opt.Addrs, addr)
	}
	return opt, nil
}

func (g *globalFlags) store() (*blob.Store, error) { return blob.New(g.s3) }

// services are the connections most subcommands need.
type services struct {
	redis   asynq.RedisConnOpt
	batches *batch.Client
	store   *blob.Store // nil unless asked for
}

// Close releases the Redis connection.
func (s *services) Close() error { return s.batches.Close() }

// connect opens a batch client on the configured Redis and, when withStore,
// the S3 store. Close the services when done.
func (g *globalFlags) connect(withStore bool) (*services, error) {
	ropt, err := g.redisOpt()
	if err != nil {
		return nil, err
	}
	s := &services{redis: ropt}
	if withStore {
		if s.store, err = g.store(); err != nil {
			return nil, err
		}
	}
	if s.batches, err = batch.NewClient(ropt); err != nil {
		return nil, err
	}
	return s, nil
}

// buildVersion is the module version the binary was built at, with the
// commit when it was built from a checkout.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (commit %.12s%s)", rev, dirty)
	}
	return v + ", " + info.GoVersion
}

func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "wasmjobs")
}

// redactURL hides the user info of a URL (and a password= query value) for
// help and error messages.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			s = s[:i+3] + "…@" + s[at+1:]
		}
	}
	return passwordParam.ReplaceAllString(s, "${1}…")
}

var passwordParam = regexp.MustCompile(`(?i)([?&]password=)[^&#]*`)

// urlPassword returns the password in a URL's user info, "" if none.
func urlPassword(s string) string {
	i := strings.Index(s, "://")
	at := strings.LastIndex(s, "@")
	if i < 0 || at <= i {
		return ""
	}
	_, pw, _ := strings.Cut(s[i+3:at], ":")
	return pw
}

// scrubbedError is an error whose message has secrets cut out; errors.Is
// and errors.As still see the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with every occurrence of the given URL (redacted) and
// secrets (raw and percent-decoded) removed from its message.
func scrub(err error, rawURL string, secrets ...string) error {
	msg := err.Error()
	if rawURL != "" {
		msg = strings.ReplaceAll(msg, rawURL, redactURL(rawURL))
	}
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, sec, "…")
		if dec, derr := url.PathUnescape(sec); derr == nil && dec != "" {
			msg = strings.ReplaceAll(msg, dec, "…")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

// parseParams turns repeated k=v flags into a map.
func parseParams(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}
