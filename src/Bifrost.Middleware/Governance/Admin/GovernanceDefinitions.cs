using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json.Serialization.Metadata;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// The definitions of stored keys, teams and customers: the admin API's JSON, which is the snake_case form of
/// <see cref="VirtualKeyOptions"/> and <see cref="GovernanceGroupOptions"/> (so a field added to the options is a field
/// of the API and of the store). A key is stored with <c>value_hash</c>, never its plaintext.
/// </summary>
internal static class GovernanceDefinitions
{
    /// <summary>Reads what the admin API receives: an unknown field is an error.</summary>
    public static GovernanceAdminJsonContext Strict { get; } = new(Options(JsonUnmappedMemberHandling.Disallow));

    /// <summary>Reads what the store holds (fields a newer version wrote are skipped) and writes both.</summary>
    public static GovernanceAdminJsonContext Lenient { get; } = new(Options(JsonUnmappedMemberHandling.Skip));

    private static JsonSerializerOptions Options(JsonUnmappedMemberHandling unmapped) => new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = unmapped,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>A new secret: <c>sk-bf-</c> and 32 random bytes in base64url.</summary>
    public static string NewSecret() => GovernanceValidation.Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    public static VirtualKeyOptions ReadKey(GovernanceEntity entity)
    {
        var key = JsonSerializer.Deserialize(entity.Definition.Span, Lenient.VirtualKeyOptions) ?? throw new JsonException("The definition is null.");
        key.Id = entity.Id;
        key.Value = null;
        return key;
    }

    public static GovernanceGroupOptions ReadGroup(GovernanceEntity entity)
    {
        var group = JsonSerializer.Deserialize(entity.Definition.Span, Lenient.GovernanceGroupOptions) ?? throw new JsonException("The definition is null.");
        group.Id = entity.Id;
        return group;
    }

    /// <summary>The stored form (UTF-8 JSON) of a definition.</summary>
    public static byte[] Write<T>(T value, JsonTypeInfo<T> typeInfo) => JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
}

/// <summary>The admin API's and the store's JSON for keys, teams and customers (see <see cref="GovernanceDefinitions"/>).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(VirtualKeyOptions))]
[JsonSerializable(typeof(GovernanceGroupOptions))]
internal sealed partial class GovernanceAdminJsonContext : JsonSerializerContext;
