using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Providers.Local;

/// <summary>
/// Moderations of the local provider (issue 17, J): deterministic. A text containing <see cref="FlagKeyword"/> is flagged
/// for <c>harassment</c>, one containing <c>bifrost-flag:{category}</c> (e.g. <c>bifrost-flag:violence/graphic</c>) for
/// that category, with score 0.99; every other score is a stable hash of the text and category below 0.001. Image parts
/// add <c>image</c> to the applied input types of the categories OpenAI classifies images for.
/// </summary>
internal sealed partial class LocalProviderAdapter
{
    /// <summary>The keyword that makes the local provider flag a text.</summary>
    internal const string FlagKeyword = "bifrost-flag";

    /// <summary>OpenAI's moderation categories (omni-moderation), in its order.</summary>
    internal static readonly string[] ModerationCategories =
    [
        "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
        "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic",
    ];

    /// <summary>The categories OpenAI also classifies images for.</summary>
    private static readonly string[] ImageCategories = ["self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence", "violence/graphic"];

    public Task<ModerationResponse> ModerationAsync(ProviderContext context, ModerationRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var response = new ModerationResponse { Id = "modr-" + NewId()["chatcmpl-".Length..], Model = context.Model };
        foreach (var item in ModerationInput.Read(request.Input))
        {
            response.Results.Add(Classify(item));
        }

        return Task.FromResult(response);
    }

    private static ModerationClassification Classify(ModerationItem item)
    {
        var flagged = FlaggedCategories(item.Text);
        var result = new ModerationClassification
        {
            Categories = new Dictionary<string, bool>(ModerationCategories.Length, StringComparer.Ordinal),
            CategoryScores = new Dictionary<string, double>(ModerationCategories.Length, StringComparer.Ordinal),
            CategoryAppliedInputTypes = new Dictionary<string, IList<string>>(ModerationCategories.Length, StringComparer.Ordinal),
        };
        foreach (var category in ModerationCategories)
        {
            var hit = flagged.Contains(category);
            result.Categories[category] = hit;
            result.CategoryScores[category] = hit ? 0.99 : Score(item.Text, category);
            var types = new List<string>(2);
            if (item.Text.Length > 0 || item.Images == 0)
            {
                types.Add("text");
            }

            if (item.Images > 0 && Array.IndexOf(ImageCategories, category) >= 0)
            {
                types.Add("image");
            }

            result.CategoryAppliedInputTypes[category] = types;
            result.Flagged |= hit;
        }

        return result;
    }

    /// <summary>The categories the text's keywords flag: <c>bifrost-flag:{category}</c> (the longest category named), else <c>harassment</c>.</summary>
    private static HashSet<string> FlaggedCategories(string text)
    {
        var flagged = new HashSet<string>(StringComparer.Ordinal);
        for (var at = text.IndexOf(FlagKeyword, StringComparison.Ordinal); at >= 0; at = text.IndexOf(FlagKeyword, at + FlagKeyword.Length, StringComparison.Ordinal))
        {
            var rest = text.AsSpan(at + FlagKeyword.Length);
            string? named = null;
            if (rest.StartsWith(":", StringComparison.Ordinal))
            {
                foreach (var category in ModerationCategories)
                {
                    if (rest[1..].StartsWith(category, StringComparison.Ordinal) && (named is null || category.Length > named.Length))
                    {
                        named = category;
                    }
                }
            }

            flagged.Add(named ?? "harassment");
        }

        return flagged;
    }

    /// <summary>A stable score below 0.001 from the SHA-256 of the category and the text.</summary>
    private static double Score(string text, string category)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(category + "\n" + text), hash);
        return Math.Round(BinaryPrimitives.ReadUInt32LittleEndian(hash) / (double)uint.MaxValue * 0.001, 9);
    }
}
