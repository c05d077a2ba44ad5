using System.Text.Json.Serialization;

namespace Bifrost.Middleware.Files;

/// <summary>OpenAI's file object: the wire form of a <see cref="StoredFile"/> (whose owner is never sent).</summary>
internal sealed class FileObject
{
    public required string Id { get; init; }

    public string Object { get; init; } = "file";

    public long Bytes { get; init; }

    public long CreatedAt { get; init; }

    public required string Filename { get; init; }

    public required string Purpose { get; init; }

    /// <summary>Always <c>processed</c> once stored.</summary>
    public string Status { get; init; } = "processed";

    public long? ExpiresAt { get; init; }

    public static FileObject From(StoredFile file) => new()
    {
        Id = file.Id,
        Bytes = file.Bytes,
        CreatedAt = file.CreatedAt,
        Filename = file.Filename,
        Purpose = file.Purpose,
        ExpiresAt = file.ExpiresAt,
    };
}

internal sealed class FileListResponse
{
    public string Object { get; set; } = "list";

    public IList<FileObject> Data { get; set; } = [];

    public bool HasMore { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FirstId { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? LastId { get; set; }
}

internal sealed class FileDeletedResponse
{
    public string Id { get; set; } = string.Empty;

    public string Object { get; set; } = "file";

    public bool Deleted { get; set; }
}
