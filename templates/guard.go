package templates

import (
	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// GuardConst is the constant of package runtime/registry generated code
// refers to: a runtime whose contract with generated code changed no
// longer declares it, so stale generated code fails to compile instead of
// misbehaving.
const GuardConst = "SupportPackageIsVersion3"

// Guard emits the compile-time check that the generated code and the
// runtime package it is compiled against match.
func Guard(f *jen.File) {
	docf(f.Group, 0, "This is a compile-time assertion that this file matches the runtime it is built with.")
	f.Const().Id("_").Op("=").Qual(model.RegistryPath, GuardConst)
}
