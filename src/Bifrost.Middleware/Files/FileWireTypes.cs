namespace Bifrost.Middleware.Files;

/// <summary>OpenAI's file object: the wire form of a <see cref="StoredFile"/> (whose owner is never sent). Written, never read.</summary>
internal sealed class FileObject(StoredFile file)
{
    public string Id => file.Id;

    public string Object { get; } = "file";

    public long Bytes => file.Bytes;

    public long CreatedAt => file.CreatedAt;

    public string Filename => file.Filename;

    public string Purpose => file.Purpose;

    /// <summary>Always <c>processed</c> once stored.</summary>
    public string Status { get; } = "processed";

    public long? ExpiresAt => file.ExpiresAt;
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
