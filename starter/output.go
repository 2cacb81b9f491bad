package main

import (
	"encoding/json"
	"errors"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Output formats of the -o flag.
const (
	formatTable = "table" // for people: aligned columns or "Label: value" lines
	formatJSON  = "json"  // for programs: indented JSON, arrays for lists, stable keys
)

var outputFormats = []string{formatTable, formatJSON}

// output is the -o flag of read commands: table (default) or json. A value other
// than these is refused while the flags are parsed: a usage error, nothing done.
type output struct{ format string }

func addOutputFlag(cmd *cobra.Command) *output {
	o := &output{format: formatTable}
	cmd.Flags().VarP(o, "output", "o", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{formatTable + "\taligned columns, for people", formatJSON + "\tJSON, for scripts"}, cobra.ShellCompDirectiveNoFileComp))
	return o
}

// String, Set and Type make output a pflag.Value.
func (o *output) String() string { return o.format }
func (o *output) Type() string   { return "format" }
func (o *output) Set(v string) error {
	for _, f := range outputFormats {
		if v == f {
			o.format = v
			return nil
		}
	}
	return errors.New("want table or json")
}

func (o *output) json() bool { return o.format == formatJSON }

// writeJSON writes v as indented JSON; nil slices should be made empty by the
// caller so that lists are always arrays.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nonNil returns s, or an empty slice when s is nil: JSON lists are [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
