//go:build tools

// Package tools pins the test tools the exporter's tests run, kept out of
// the main module so their dependencies never reach the product build.
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// internal/s3test runs that install itself when versitygw is missing.
package tools

import (
	_ "github.com/versity/versitygw/cmd/versitygw"
)
