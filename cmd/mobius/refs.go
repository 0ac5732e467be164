package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func (c *cli) refsCommand() *cobra.Command {
	cmd := c.group("refs", "Check the secret references of a loop's parameters",
		`A reference ${secret:NAME.KEY} (optionally @pending, @previous or @N after KEY)
in an action's parameters is replaced by resolve at run time. These commands
check references ahead of time, without reading any value.`)
	cmd.AddCommand(c.refsCheck())
	return cmd
}

func (c *cli) refsCheck() *cobra.Command {
	var strict bool
	var file string
	cmd := &cobra.Command{
		Use:   "check FILE [--strict]",
		Short: "Check every reference in a JSON file; exit 1 on any problem (for CI)",
		Long: `Send the JSON of FILE ("-" for standard input; or --file FILE, as resolve
takes it) to the server's reference check
and print, for each reference, where it is, the version it selects now and
whether it would resolve: the secret exists, the version holds the key, the
reference is well formed and not inside an object key. Nothing is decrypted
and no value is read, so an API key with secrets:read is enough.

Exits 1 when any reference would not resolve (and, with --strict, when any
carries a warning, such as a name kept only as an alias after a rename).`,
		Example: `  mobius refs check loops/summarizer/params.json
  mobius refs check - < params.json -o json
  mobius refs check --file params.json --strict`,
		Args: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return exactArgs("FILE")(cmd, args)
			}
			if len(args) > 0 {
				return usagef("%s takes FILE or --file, not both", cmd.CommandPath())
			}
			return nil
		},
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if file == "" {
				file = args[0]
			}
			name, doc, err := readParams(file, c.stdin)
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			rep, err := cl.CheckReferences(c.ctx, "", doc)
			if err != nil {
				return err
			}
			warnings := 0
			for _, r := range rep.References {
				if r.Warning != nil {
					warnings++
				}
			}
			if c.json() {
				if err := c.printRaw(rep.Raw); err != nil {
					return err
				}
			} else {
				t := newTable(c.stdout, "AT", "REFERENCE", "VERSION", "RESULT")
				for _, r := range rep.References {
					version, result := "-", "ok"
					if r.Version != nil {
						version = strconv.Itoa(*r.Version)
					}
					switch {
					case r.Problem != nil:
						result = *r.Problem
					case r.Warning != nil:
						result = "warning: " + *r.Warning
					}
					at := r.At
					if at == "" {
						at = "/"
					}
					t.row(at, r.Reference, version, result)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if len(rep.References) == 0 {
					fmt.Fprintf(c.stdout, "%s holds no secret references.\n", name)
				}
			}
			switch {
			case rep.Problems > 0:
				return fmt.Errorf("%s: %d of %d references would not resolve", name, rep.Problems, len(rep.References))
			case strict && warnings > 0:
				return fmt.Errorf("%s: %d of %d references carry a warning (--strict)", name, warnings, len(rep.References))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	cmd.Flags().StringVar(&file, "file", "", `the JSON file ("-" for standard input), as resolve takes it; the same as FILE`)
	return cmd
}
