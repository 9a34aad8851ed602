package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
)

// testHTTPClient trusts the CA certificate in caFile, if any.
func testHTTPClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	if caFile == "" {
		return http.DefaultClient
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
