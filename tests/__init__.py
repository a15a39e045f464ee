"""The test suite (`make test`: fast tier; `make test-integration`: the tests marked
`integration`)."""
