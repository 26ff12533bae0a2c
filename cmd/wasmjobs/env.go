package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag may also be set through an environment variable, named in its
// help as [$NAME]; a flag given on the command line wins. The variable of a
// configuration flag (shared by the commands that run things: the global
// flags, the sandbox, inference, worker and web flags) is named where the
// flag is made, mostly WASMJOBS_<FLAG>; a flag of one command only gets
// WASMJOBS_<COMMAND>_<FLAG> (WASMJOBS_BATCH_RUN_WAIT), so that two commands'
// flags of one name never share a variable. A value is parsed as the flag
// would parse it: a bad one is an error that names the variable, never a
// silent default. An empty variable counts as unset, except for a string
// flag (WASMJOBS_CACHE_DIR= turns the disk cache off).

// envAnnotation is the pflag annotation that holds a flag's variable.
const envAnnotation = "wasmjobs-env"

// setEnv names the variables of flags of f: pairs of flag name and
// variable, or a flag name alone for WASMJOBS_<FLAG>.
func setEnv(f *pflag.FlagSet, names ...string) {
	for _, spec := range names {
		flag, env, ok := strings.Cut(spec, "=")
		if !ok {
			env = envFromName("WASMJOBS", flag)
		}
		if f.Lookup(flag) == nil {
			panic("setEnv: no flag --" + flag)
		}
		_ = f.SetAnnotation(flag, envAnnotation, []string{env})
	}
}

// envFromName is PREFIX_NAME in upper case with dashes and spaces as
// underscores.
func envFromName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(name))
}

// flagEnv returns the variable of a flag.
func flagEnv(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// nameEnv gives every flag of the command tree under c a variable (its
// command's, for flags setEnv did not name) and shows it in the help.
func nameEnv(c *cobra.Command) {
	cmdPath := strings.TrimPrefix(c.CommandPath(), c.Root().Name())
	name := func(f *pflag.Flag) {
		if f.Name == "help" || f.Name == "version" {
			return
		}
		env := flagEnv(f)
		if env == "" {
			env = envFromName("WASMJOBS", strings.TrimSpace(cmdPath)+" "+f.Name)
			if f.Annotations == nil {
				f.Annotations = map[string][]string{}
			}
			f.Annotations[envAnnotation] = []string{env}
		}
		if !strings.Contains(f.Usage, "[$"+env) {
			f.Usage += " [$" + env + "]"
		}
	}
	c.LocalNonPersistentFlags().VisitAll(name)
	c.PersistentFlags().VisitAll(name)
	for _, sub := range c.Commands() {
		nameEnv(sub)
	}
}

// applyEnv sets each flag of cmd (its own and those it inherits) that the
// command line left alone from its variable, when that is set.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		env := flagEnv(f)
		if err != nil || f.Changed || env == "" {
			return
		}
		v, ok := os.LookupEnv(env)
		if !ok || (v == "" && f.Value.Type() != "string") {
			return // unset; empty is a value only for a string flag
		}
		if e := cmd.Flags().Set(f.Name, v); e != nil {
			// The flag's own parse error quotes the value: keep it out for
			// flags that may hold secrets.
			if strings.Contains(f.Name, "secret") || strings.Contains(f.Name, "redis") {
				e = fmt.Errorf("not a valid value for --%s", f.Name)
			}
			err = fmt.Errorf("$%s: %w", env, e)
		}
	})
	return err
}
