package registry

// SupportPackageIsVersion3 is referenced by generated code
// (`const _ = registry.SupportPackageIsVersion3`) so that code generated
// for a runtime it does not match fails to compile instead of misbehaving.
// It is bumped, and the old constant removed, when the contract between
// generated code and the runtime changes incompatibly.
const SupportPackageIsVersion3 = true
