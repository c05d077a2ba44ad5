global using Bifrost.Middleware.OpenAI;
