using Bifrost.Middleware.Packaging.Tests.Infrastructure;

// One `dotnet pack` for the whole assembly: every test class takes the same PackedLibrary in its constructor (a class
// fixture per class would pack once per class, at the same time, on a shared machine).
[assembly: AssemblyFixture(typeof(PackedLibrary))]
