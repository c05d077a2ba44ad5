namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>Files of this repository (README, samples) that tests read.</summary>
public static class Repository
{
    /// <summary>The repository root: the directory holding <c>Bifrost.Middleware.sln</c> above the test binaries.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A path under the root, from its segments.</summary>
    public static string PathOf(params string[] segments) => Path.Combine([Root, .. segments]);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Bifrost.Middleware.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Bifrost.Middleware.sln) was not found above " + AppContext.BaseDirectory);
    }
}
