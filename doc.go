// Package cqrsgen is the root of the cqrsgen module. It holds no code: the
// generator is cmd/cqrsgen, the runtime generated code calls is package
// runtime, and the stores are under backends/. This package exists for
// generate_test.go, the generator's golden, error and end-to-end tests.
package cqrsgen
