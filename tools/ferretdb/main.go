// Command ferretdb runs an embedded FerretDB (a MongoDB wire-compatible
// server backed by SQLite) for the project's tests. It lives in its own
// module so that FerretDB's dependencies stay out of the library's go.mod.
//
// Usage:
//
//	ferretdb [-listen 127.0.0.1:0] [-dir DIR] [-uri-file FILE]
//
// Once it listens, it prints the MongoDB URI on stdout (one line) and, with
// -uri-file, also writes it to FILE. It stops cleanly on SIGINT or SIGTERM.
//
// Do not build it with -race: FerretDB then switches to a slow debug build.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "TCP address to listen on")
	dir := fs.String("dir", "", "directory for the SQLite files (default: a new temporary directory, removed on exit)")
	uriFile := fs.String("uri-file", "", "also write the MongoDB URI to this file")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	if *dir == "" {
		tmp, err := os.MkdirTemp("", "ferretdb-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// MongoDBURI waits until the listener is bound (and so knows its port).
	uriReady := make(chan string, 1)
	go func() { uriReady <- f.MongoDBURI() }()
	var uri string
	select {
	case uri = <-uriReady:
	case err := <-done:
		if err == nil {
			err = errors.New("stopped before listening")
		}
		return err
	}

	if *uriFile != "" {
		// Write then rename, so a reader polling for the file never sees
		// half a line.
		tmp := *uriFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(uri+"\n"), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *uriFile); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, uri)

	return <-done
}
