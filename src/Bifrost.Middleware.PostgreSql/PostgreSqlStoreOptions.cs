using System.Text.RegularExpressions;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>Options of the PostgreSQL job and file stores (bindable from configuration, e.g. <c>Bifrost:PostgreSql</c>).</summary>
public sealed partial class PostgreSqlStoreOptions
{
    /// <summary>The default <see cref="Schema"/>.</summary>
    public const string DefaultSchema = "bifrost";

    /// <summary>The Npgsql connection string, e.g. <c>Host=db;Database=app;Username=app;Password=...</c>. Required.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The schema holding the tables (created on start when missing). Lower-case letters, digits and underscores, at
    /// most 40 characters. Every instance sharing jobs must use the same schema. Default <c>bifrost</c>.
    /// </summary>
    public string Schema { get; set; } = DefaultSchema;

    /// <summary>Whether batch input/output files are kept in PostgreSQL too (so every instance reaches them). Default true.</summary>
    public bool UseForFiles { get; set; } = true;

    /// <summary>Size of the rows an uploaded file is cut into, in bytes (64 KiB to 64 MiB). Default 1 MiB.</summary>
    public int FileChunkSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Whether this instance listens for the other instances' notifications (<c>LISTEN/NOTIFY</c>) so its idle workers
    /// start a newly queued job at once; without it they find it at their next poll. Default true.
    /// </summary>
    public bool Listen { get; set; } = true;

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> naming the wrong one.</summary>
    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException("A PostgreSQL connection string is required (PostgreSqlStoreOptions.ConnectionString).", nameof(ConnectionString));
        }

        ValidateSchema(Schema);
        ValidateChunkSize(FileChunkSize);
    }

    internal static void ValidateChunkSize(int chunkSize)
    {
        if (chunkSize is < 64 * 1024 or > 64 * 1024 * 1024)
        {
            throw new ArgumentException($"FileChunkSize must be between 64 KiB and 64 MiB; it is {chunkSize}.", nameof(chunkSize));
        }
    }

    internal static void ValidateSchema(string schema)
    {
        if (schema is null || !SchemaName().IsMatch(schema))
        {
            throw new ArgumentException($"The schema name '{schema}' is invalid: use 1 to 40 lower-case ASCII letters, digits or underscores, starting with a letter or underscore.", nameof(schema));
        }
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,39}$", RegexOptions.CultureInvariant)]
    private static partial Regex SchemaName();
}
