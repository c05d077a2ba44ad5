using System.Text;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>
/// The fake's media answers, shared with the fake Vertex upstream, per Google's documentation:
/// <list type="bullet">
/// <item>Imagen <c>:predict</c> (https://ai.google.dev/gemini-api/docs/imagen,
/// https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api): <c>instances[{prompt}]</c>,
/// <c>parameters.sampleCount</c> 1–4 (default 4), <c>parameters.aspectRatio</c> one of 1:1, 3:4, 4:3, 9:16, 16:9 (else 400
/// INVALID_ARGUMENT) → <c>predictions[{mimeType, bytesBase64Encoded}]</c>; a prompt with "[filter-one]" has its first image
/// filtered (<c>{"raiFilteredReason": ...}</c>), with "[filter-all]" the answer is <c>{}</c> (all filtered away).</item>
/// <item>generateContent with <c>responseModalities ["AUDIO"]</c> (https://ai.google.dev/gemini-api/docs/speech-generation):
/// <c>speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName</c> must be one of Gemini's voices (else 400), the answer one
/// <c>inlineData</c> part of <c>audio/L16;codec=pcm;rate=24000</c> (<see cref="Pcm"/> of the text).</item>
/// <item>generateContent with <c>responseModalities ["IMAGE"]</c> (https://ai.google.dev/gemini-api/docs/image-generation):
/// <c>imageConfig.aspectRatio</c> checked, the answer a text part and an <c>image/png</c> <c>inlineData</c> part
/// (<see cref="ImageBytes"/>).</item>
/// <item>generateContent with an audio <c>inlineData</c> part (https://ai.google.dev/gemini-api/docs/audio): the text
/// "transcript of {n} bytes of {mimeType}" ("English translation of ..." when the prompt starts with "Translate").</item>
/// </list>
/// </summary>
public sealed partial class FakeGeminiUpstream
{
    /// <summary>Gemini's prebuilt TTS voices (https://ai.google.dev/gemini-api/docs/speech-generation#voices).</summary>
    public static readonly string[] Voices =
    [
        "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe", "Enceladus", "Iapetus",
        "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar",
        "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
    ];

    private static readonly string[] ImagenRatios = ["1:1", "3:4", "4:3", "9:16", "16:9"];

    private static readonly string[] GeminiImageRatios = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"];

    /// <summary>The fake's speech: two 16-bit little-endian samples per character of the text.</summary>
    public static byte[] Pcm(string text)
    {
        var pcm = new byte[text.Length * 4];
        for (var i = 0; i < text.Length; i++)
        {
            pcm[i * 4] = (byte)text[i];
            pcm[(i * 4) + 1] = 0x10;
            pcm[(i * 4) + 2] = (byte)~text[i];
            pcm[(i * 4) + 3] = 0xEF;
        }

        return pcm;
    }

    /// <summary>The fake's image: the PNG signature and a text naming the prompt, the index and the ratio.</summary>
    public static byte[] ImageBytes(string prompt, int index, string ratio) =>
        [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Encoding.UTF8.GetBytes($"{prompt}|{index}|{ratio}")];

    /// <summary>Imagen's <c>:predict</c> answer: (status, body).</summary>
    public static (int Status, JsonObject Body) Imagen(JsonObject request)
    {
        var prompt = request["instances"]?[0]?["prompt"]?.GetValue<string>();
        if (string.IsNullOrEmpty(prompt))
        {
            return (400, Error(400, "instances[0].prompt is required."));
        }

        var count = request["parameters"]?["sampleCount"]?.GetValue<int>() ?? 4;
        var ratio = request["parameters"]?["aspectRatio"]?.GetValue<string>() ?? "1:1";
        if (count is < 1 or > 4)
        {
            return (400, Error(400, "Number of images must be in range [1, 4]."));
        }

        if (Array.IndexOf(ImagenRatios, ratio) < 0)
        {
            return (400, Error(400, $"Unsupported aspect ratio: {ratio}."));
        }

        if (prompt.Contains("[filter-all]", StringComparison.Ordinal))
        {
            return (200, []);
        }

        var predictions = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            predictions.Add(i == 0 && prompt.Contains("[filter-one]", StringComparison.Ordinal)
                ? new JsonObject { ["raiFilteredReason"] = "56: a filter blocked this image." }
                : new JsonObject { ["mimeType"] = "image/png", ["bytesBase64Encoded"] = Convert.ToBase64String(ImageBytes(prompt, i, ratio)) });
        }

        return (200, new JsonObject { ["predictions"] = predictions });
    }

    /// <summary>The answer to a media generateContent request (speech, image, audio input), or null for a text request.</summary>
    public static (int Status, JsonObject Body)? Media(JsonObject request)
    {
        var modalities = request["generationConfig"]?["responseModalities"]?.AsArray().Select(m => m!.GetValue<string>()).ToList() ?? [];
        var text = LastUserText(request);
        if (modalities.Contains("AUDIO"))
        {
            var voice = request["generationConfig"]?["speechConfig"]?["voiceConfig"]?["prebuiltVoiceConfig"]?["voiceName"]?.GetValue<string>();
            if (voice is null || Array.IndexOf(Voices, voice) < 0)
            {
                return (400, Error(400, $"Voice name '{voice}' is not supported."));
            }

            var audio = new JsonObject { ["inlineData"] = new JsonObject { ["mimeType"] = "audio/L16;codec=pcm;rate=24000", ["data"] = Convert.ToBase64String(Pcm(text)) } };
            return (200, Response(new JsonArray(audio), prompt: 8, candidates: 48));
        }

        if (modalities.Contains("IMAGE"))
        {
            var ratio = request["generationConfig"]?["imageConfig"]?["aspectRatio"]?.GetValue<string>() ?? "1:1";
            if (Array.IndexOf(GeminiImageRatios, ratio) < 0)
            {
                return (400, Error(400, $"Unsupported aspect ratio: {ratio}."));
            }

            if (text.Contains("[filter-all]", StringComparison.Ordinal))
            {
                return (200, new JsonObject { ["promptFeedback"] = new JsonObject { ["blockReason"] = "PROHIBITED_CONTENT" } });
            }

            var image = new JsonObject { ["inlineData"] = new JsonObject { ["mimeType"] = "image/png", ["data"] = Convert.ToBase64String(ImageBytes(text, 0, ratio)) } };
            return (200, Response(new JsonArray(Text("Here is the image."), image), prompt: 7, candidates: 1290));
        }

        var inline = request["contents"]?.AsArray().SelectMany(c => c!["parts"]!.AsArray()).Select(p => p!["inlineData"]).FirstOrDefault(d => d is not null);
        if (inline is not null && inline["mimeType"]!.GetValue<string>().StartsWith("audio/", StringComparison.Ordinal))
        {
            var bytes = Convert.FromBase64String(inline["data"]!.GetValue<string>());
            var what = text.StartsWith("Translate", StringComparison.Ordinal) ? "English translation" : "transcript";
            return (200, Response(new JsonArray(Text($"{what} of {bytes.Length} bytes of {inline["mimeType"]!.GetValue<string>()}")), prompt: 120, candidates: 9));
        }

        return null;
    }
}
