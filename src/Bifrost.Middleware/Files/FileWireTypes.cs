using System.Text.Json.Serialization;

namespace Bifrost.Middleware.Files;

internal sealed class FileListResponse
{
    public string Object { get; set; } = "list";

    public IList<StoredFile> Data { get; set; } = [];

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
