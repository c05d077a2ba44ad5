using Bifrost.Middleware.Packaging.Tests.Infrastructure;
using Xunit;

namespace Bifrost.Middleware.Testing.Tests;

/// <summary>README's "Testing your app" example is ReadmeExample.cs, character for character (so the test run here is README's).</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void The_README_example_is_the_test_compiled_here()
    {
        var root = RepoRoot();
        var readme = ReadmeSnippets.Get(Path.Combine(root, "README.md"), "testing-example");
        var compiled = File.ReadAllText(Path.Combine(root, "tests", "Bifrost.Middleware.Testing.Tests", "ReadmeExample.cs"));

        Assert.Equal(compiled.ReplaceLineEndings("\n"), readme.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void The_README_packages_add_the_testing_package_and_a_WebApplicationFactory_of_the_net10_line()
    {
        var commands = ReadmeSnippets.Get(Path.Combine(RepoRoot(), "README.md"), "testing-packages");

        Assert.Contains("dotnet add package Bifrost.Middleware.Testing\n", commands.ReplaceLineEndings("\n"));
        Assert.Contains("dotnet add package Microsoft.AspNetCore.Mvc.Testing --version 10.0.", commands);
        Assert.DoesNotContain("XunitV3", commands); // the example runs on xunit 2 as well
    }

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bifrost.Middleware.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Bifrost.Middleware.sln not found above {AppContext.BaseDirectory}.");
    }
}
