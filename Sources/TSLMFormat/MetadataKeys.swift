/// The metadata keys and family names that the converter writes and the runtime reads, in one
/// place (formats/tslm.md, "Metadata keys"). Keys of a family live under the family's own prefix
/// (`opentslm.*`, later `chattime.*`, `timellm.*`, `lstm.*`) so that families never collide.
public enum MetadataKeys {
    /// The backbone architecture (`llama`, `gemma3`, `gpt2`) or `raw`.
    public static let architecture = "general.architecture"
    /// The model family: what the runtime builds from the file (`ModelFamilyName`). Required
    /// since the 2026-12 revision of format version 1.
    public static let family = "general.family"
    public static let fileType = "general.file_type"
    public static let converter = "general.converter"
    public static let name = "general.name"
    public static let chatTemplate = "tokenizer.chat_template"

    /// OpenTSLM SoftPrompt and Flamingo (formats/tslm.md, "OpenTSLM").
    public enum OpenTSLM {
        public static let prefix = "opentslm."
        /// The task preset the model was trained for (`har`, `sleep`, `ecg`, `tsqa`, `m4`, `custom`).
        public static let preset = "opentslm.preset"
        /// The prompt the model was trained with: text before the series, each series'
        /// description template, text after the series, and the channel names in prompt order.
        public static let promptPre = "opentslm.prompt.pre"
        public static let promptSeries = "opentslm.prompt.series"
        public static let promptPost = "opentslm.prompt.post"
        public static let promptChannels = "opentslm.prompt.channels"
        public static let patchSize = "opentslm.patch_size"
        public static let encoderWidth = "opentslm.encoder.embedding_length"
        public static let encoderMaxPatches = "opentslm.encoder.max_patches"
        public static let encoderBlocks = "opentslm.encoder.block_count"
        public static let encoderHeads = "opentslm.encoder.head_count"
        public static let encoderFeedForward = "opentslm.encoder.feed_forward_length"
        public static let layerNormEpsilon = "opentslm.encoder.layer_norm_epsilon"
        public static let perceiverLatents = "opentslm.perceiver.latent_count"
        public static let perceiverBlocks = "opentslm.perceiver.block_count"
        public static let perceiverHeads = "opentslm.perceiver.head_count"
        public static let perceiverKeyLength = "opentslm.perceiver.key_length"
        public static let perceiverFeedForward = "opentslm.perceiver.feed_forward_length"
        public static let crossAttentionEvery = "opentslm.xattn.every_n_layers"
        public static let crossAttentionHeads = "opentslm.xattn.head_count"
        public static let crossAttentionKeyLength = "opentslm.xattn.key_length"
        public static let crossAttentionFeedForward = "opentslm.xattn.feed_forward_length"
        public static let mediaTokenID = "opentslm.media_token_id"
        public static let endOfChunkTokenID = "opentslm.end_of_chunk_token_id"
        public static let loraMerged = "opentslm.lora.merged"
        public static let loraRank = "opentslm.lora.rank"
        public static let loraAlpha = "opentslm.lora.alpha"
        public static let loraScale = "opentslm.lora.scale"
        public static let loraTargetCount = "opentslm.lora.target_count"
    }

    /// The LSTM forecaster (formats/tslm.md, "LSTM forecaster").
    public enum LSTM {
        public static let prefix = "lstm."
        /// History steps the model reads (the last `input_window` steps of a history).
        public static let inputWindow = "lstm.input_window"
        /// Steps it forecasts.
        public static let horizon = "lstm.horizon"
        public static let hiddenSize = "lstm.hidden_size"
        public static let blockCount = "lstm.block_count"
        /// Channel names (string[]): the inputs in order, and the outputs in order.
        public static let inputChannels = "lstm.input_channels"
        public static let outputChannels = "lstm.output_channels"
        /// Per-channel affine scaling (f32[]): x' = (x − mean) / std in, y = y' · std + mean out.
        public static let inputMean = "lstm.input_mean"
        public static let inputStd = "lstm.input_std"
        public static let outputMean = "lstm.output_mean"
        public static let outputStd = "lstm.output_std"
    }

    /// Time-LLM (formats/tslm.md, "Time-LLM"); the backbone's own keys stay `<arch>.*` (its
    /// `block_count` is the truncated depth).
    public enum TimeLLM {
        public static let prefix = "timellm."
        public static let sequenceLength = "timellm.seq_len"
        public static let predictionLength = "timellm.pred_len"
        public static let patchLength = "timellm.patch_len"
        public static let stride = "timellm.stride"
        public static let modelWidth = "timellm.d_model"
        public static let feedForward = "timellm.d_ff"
        public static let heads = "timellm.head_count"
        public static let prototypes = "timellm.prototype_count"
        /// The dataset description in the prompt (upstream hard-codes ETT's for every dataset).
        public static let description = "timellm.description"
    }

    /// ChatTime (formats/tslm.md, "ChatTime"): a Llama backbone whose vocabulary has the 10,001
    /// value tokens; these are the official inference defaults, kept in the file so a model can
    /// carry others.
    public enum ChatTime {
        public static let prefix = "chattime."
        /// Steps forecast per prompt (the official `max_pred_len`, 16).
        public static let maxChunk = "chattime.max_chunk"
        /// Sampled paths per forecast or answers per analysis (`num_samples`, 8).
        public static let samples = "chattime.samples"
        /// Top-k of the sampler (100) and its temperature (1).
        public static let topK = "chattime.top_k"
        public static let temperature = "chattime.temperature"
        /// New tokens of an analysis answer (16).
        public static let answerTokens = "chattime.answer_tokens"
    }

    /// The key prefix files written before families used for OpenTSLM (`timeseries.model`, …):
    /// such a file is refused with a message asking to re-convert it.
    public static let legacyTimeSeriesPrefix = "timeseries."
}

/// The model families of `general.family`. A family is what the runtime builds from a file: its
/// parts, how inputs enter it, its per-session state and what it can do (formats/tslm.md,
/// "Model families").
public enum ModelFamilyName: String, Sendable, CaseIterable {
    /// A text backbone alone.
    case text
    /// OpenTSLM SoftPrompt: series → soft tokens spliced into a text backbone's prompt.
    case openTSLMSoftPrompt = "opentslm-sp"
    /// OpenTSLM Flamingo: series → perceiver latents attended by gated cross-attention.
    case openTSLMFlamingo = "opentslm-flamingo"
    /// ChatTime: value tokens on a Llama backbone (forecast and multiple-choice analysis).
    case chatTime = "chattime"
    /// Time-LLM (reprogrammed patches through a truncated backbone) and an LSTM forecaster.
    case timeLLM = "timellm"
    case lstm
}
