using Bifrost.Middleware.Packaging.Tests.Infrastructure;

// One `dotnet pack` of every package for the whole test assembly (a class may still ask for its own with IClassFixture).
[assembly: AssemblyFixture(typeof(PackedLibrary))]
