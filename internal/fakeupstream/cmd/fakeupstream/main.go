// Command fakeupstream serves recorded registry data (testdata/registry) as a
// fake npm registry on a loopback address, for trying clients by hand:
//
//	go run ./internal/fakeupstream/cmd/fakeupstream -dir testdata/registry -listen 127.0.0.1:15999
//	npm ci --registry=http://127.0.0.1:15999/ --replace-registry-host=always
//
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

func main() {
	dir := flag.String("dir", fakeupstream.Dir(), "recorded registry directory")
	listen := flag.String("listen", "127.0.0.1:15999", "loopback `host:port` to listen on (port 0 picks one)")
	latency := flag.Duration("latency", 0, "delay before every answer, e.g. 30ms")
	rewrite := flag.Bool("rewrite", true, "rewrite dist.tarball URLs in packuments to point at this server")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("fakeupstream: ")

	opts := []fakeupstream.Option{
		fakeupstream.WithListenAddr(*listen),
		fakeupstream.WithLatency(*latency),
		fakeupstream.WithTarballBaseRewrite(*rewrite),
	}
	if *verbose {
		opts = append(opts, fakeupstream.WithLogf(log.New(os.Stderr, "", log.Lmicroseconds).Printf))
	}
	s, err := fakeupstream.New(*dir, opts...)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving %s at %s", s.Dir(), s.URL)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	st := s.Requests()
	log.Printf("stopping after %d requests (%d packuments, %d tarballs, %d not modified, %d not found)",
		st.Total, st.Packuments, st.Tarballs, st.NotModified, st.NotFound)
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
}
