package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release this binary is, set when building:
//
//	go build -ldflags "-X main.version=v1.2.0" ./cmd/keyhold
//
// Empty, the module version Go recorded is used (a tag or pseudo-version,
// or "(devel)").
var version string

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version of this binary",
		Example: "  keyhold version\n  keyhold --version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

// versionString describes this binary: keyhold's version, the commit it
// was built from and the Go version that built it.
func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, info)
}

// describeBuild formats what --version prints from the -ldflags version
// and the build information Go embedded (nil when there is none).
func describeBuild(version string, info *debug.BuildInfo) string {
	goVersion := runtime.Version()
	commit, modified := "unknown", false
	if info != nil {
		if version == "" {
			version = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("keyhold %s\ncommit  %s\ngo      %s", version, commit, goVersion)
}
