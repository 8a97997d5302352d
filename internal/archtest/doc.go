// Package archtest holds the test of the import rule of DESIGN.md:
// dependencies point one way, cmd → proxy → {cache, filter, auth}.
package archtest
