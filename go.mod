module archive

go 1.26

require (
	github.com/hashicorp/go-multierror v1.1.1
	gopkg.in/ini.v1 v1.68.0
)

require github.com/hashicorp/errwrap v1.0.0 // indirect
