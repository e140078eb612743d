// Command httpsd serves a folder over HTTPS on loopback: the demo's and the benchmark's source.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	dir := flag.String("dir", ".", "folder to serve")
	cert := flag.String("cert", "server.pem", "certificate (PEM)")
	key := flag.String("key", "server.key", "private key (PEM)")
	flag.Parse()
	log.Fatal(http.ListenAndServeTLS(*addr, *cert, *key, http.FileServer(http.Dir(*dir))))
}
