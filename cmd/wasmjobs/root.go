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
	"strconv"
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
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setupLogging()
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.redisURL, "redis", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL: redis://, rediss://, redis-socket://, redis-sentinel://[:password@]host:port,…?master=NAME or redis-cluster://host:port,… [$REDIS_URL]")
	f.StringVar(&g.s3.Endpoint, "s3-endpoint", envOr("S3_ENDPOINT", "127.0.0.1:9000"), "S3 endpoint host:port [$S3_ENDPOINT]")
	f.StringVar(&g.s3.AccessKey, "s3-access-key", envOr("S3_ACCESS_KEY", ""), "S3 access key [$S3_ACCESS_KEY]")
	f.StringVar(&g.s3.SecretKey, "s3-secret-key", envOr("S3_SECRET_KEY", ""), "S3 secret key [$S3_SECRET_KEY]")
	f.StringVar(&g.s3.Region, "s3-region", envOr("S3_REGION", "us-east-1"), "S3 region [$S3_REGION]")
	f.BoolVar(&g.s3.UseSSL, "s3-use-ssl", envBool("S3_USE_SSL"), "use https for S3 [$S3_USE_SSL]")
	f.StringVar(&g.cacheDir, "cache-dir", envOr("WASMJOBS_CACHE_DIR", defaultCacheDir()), "compiled-guest cache directory; empty disables the disk cache [$WASMJOBS_CACHE_DIR]")
	f.StringVar(&g.guestBucket, "guest-bucket", envOr("WASMJOBS_GUEST_BUCKET", s3url.DefaultGuestBucket), "bucket holding registered guests [$WASMJOBS_GUEST_BUCKET]")
	f.StringVar(&g.logLevel, "log-level", envOr("WASMJOBS_LOG_LEVEL", "info"), "log level: debug, info, warn, error [$WASMJOBS_LOG_LEVEL]")
	f.StringVar(&g.logFormat, "log-format", envOr("WASMJOBS_LOG_FORMAT", "text"), "log format: text or json [$WASMJOBS_LOG_FORMAT]")

	root.AddCommand(
		newWorkerCmd(g),
		newEnqueueCmd(g),
		newRunCmd(g),
		newGuestCmd(g),
		newDevCmd(g),
		newBatchCmd(g),
		newWebCmd(g),
	)
	// Help shows flag defaults, and these two come from the environment:
	// never print a secret or a URL's password there.
	f.Lookup("s3-secret-key").DefValue = ""
	f.Lookup("redis").DefValue = redactURL(g.redisURL)
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

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// envList splits a comma-separated variable; unset or empty is nil.
func envList(key string) []string {
	var out []string
	for _, v := range strings.Split(os.Getenv(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envBool(key string) bool {
	b, _ := strconv.ParseBool(os.Getenv(key))
	return b
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
