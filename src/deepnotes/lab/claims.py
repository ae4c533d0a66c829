"""The claims of the learner's notes, C01-C48, with an English title and the notes' Korean term
(the notes themselves are not part of this repository: these entries are their claims).

Experiments attach to these ids (docs/lab.md shows what each one measured); `deepnotes lab list`
shows every claim and whether it is implemented yet.
"""

from __future__ import annotations

from typing import NamedTuple


class Claim(NamedTuple):
    id: str
    title: str
    korean: str
    claim: str


CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("C01", "FC vs conv parameters", "가중치 공유", "An FC layer on an image needs n*h weights; a conv layer only k*k*C_in*C_out, shared"),
    Claim("C02", "Receptive field grows with depth", "수용 영역", "Receptive field grows with depth and kernel size"),
    Claim("C03", "Stacked 3x3 convolutions", "3x3 합성곱 쌓기", "Two 3x3 convs see 5x5 with 18C^2 instead of 25C^2 weights; three see 7x7 with 27C^2 vs 49C^2"),
    Claim("C04", "1x1 convolutions cut parameters", "1x1 합성곱", "1x1 convolutions cut Inception's parameters (channel reduction)"),
    Claim("C05", "Nonlinearity is needed", "비선형 활성화 함수", "Without a nonlinearity, stacked linear layers equal one linear layer (cannot learn XOR)"),
    Claim("C06", "Sigmoid saturates, gradients vanish", "기울기 소실", "Sigmoid saturates: derivative y(1-y) <= 0.25, gradients vanish with depth"),
    Claim("C07", "Zero initialization", "0 초기화 (대칭성 문제)", "Zero initialization makes every neuron of a layer learn the same thing"),
    Claim("C08", "Small random initialization", "작은 난수 초기화", "Small random init (0.01) makes deep activations collapse to 0"),
    Claim("C09", "Xavier for tanh, He for ReLU", "Xavier / He 초기화", "Xavier suits tanh, He suits ReLU (activation scale kept with depth)"),
    Claim("C10", "Sigmoid is not zero-centred", "0 중심이 아닌 출력 (지그재그)", "Sigmoid outputs are not zero-centred, so a neuron's weight gradients share one sign (zig-zag)"),
    Claim("C11", "Leaky ReLU vs ELU for negative inputs", "Leaky ReLU / ELU", "Leaky ReLU is unbounded for negative input; ELU saturates at -alpha"),
    Claim("C12", "Input normalization", "입력 정규화", "Normalizing inputs stabilizes and speeds training"),
    Claim("C13", "Batch normalization", "배치 정규화", "BatchNorm gives mean 0 / var 1 per feature and speeds training"),
    Claim("C14", "Dropout keeps expected activations", "드롭아웃", "Dropout with test-time scaling (or inverted dropout) keeps expected activations equal"),
    Claim("C15", "Learning rate and decay", "학습률 / 학습률 감소", "Large LR is fast but imprecise, small LR slow; decay gets both"),
    Claim("C16", "Momentum damps oscillation", "모멘텀", "Momentum damps oscillation"),
    Claim("C17", "AdaGrad vs RMSProp step size", "AdaGrad / RMSProp", "AdaGrad's accumulated squares shrink the step toward 0; RMSProp's moving average fixes it"),
    Claim("C18", "Degradation of deep plain nets", "잔차 학습", "Deep plain nets degrade (training error rises too, not overfitting); residual nets do not"),
    Claim("C19", "Skip connections keep gradients", "스킵 연결", "A skip connection keeps gradients alive (d/dx = f'(x) + 1)"),
    Claim("C20", "Transfer learning", "전이학습", "Transfer learning: retraining only the classifier adapts to new classes cheaply"),
    Claim("C21", "Data augmentation", "데이터 증강", "Data augmentation improves generalization to unusual poses"),
    Claim("C22", "Linear classifier templates", "선형 분류기 템플릿", "A linear classifier's weights look like class templates"),
    Claim("C23", "CAM and Grad-CAM", "클래스 활성화 맵", "CAM needs GAP + FC; for such nets Grad-CAM equals CAM"),
    Claim("C24", "Adversarial examples", "적대적 공격", "Small crafted perturbations fool a CNN (adversarial attack)"),
    Claim("C25", "Convolutionalization", "완전 합성곱 네트워크", "Convolutionalization: an FC head equals a conv with full-size kernel, and then runs on any input size"),
    Claim("C26", "RoI / SPP pooling", "RoI 풀링", "RoI/SPP pooling gives a fixed-size output for any region size"),
    Claim("C27", "RPN anchors", "영역 제안 네트워크 (앵커 박스)", "Faster R-CNN's RPN: 9 anchors per location, 2x9 scores + 4x9 deltas"),
    Claim("C28", "YOLO v1 output tensor", "YOLO 출력 텐서", "YOLO v1 output is S x S x (B*5 + C) = 7x7x30"),
    Claim("C29", "ViT patch embedding", "패치 임베딩", "ViT: 224x224x3 -> 196 x 768 tokens, 197 with CLS"),
    Claim("C30", "Positional encoding", "위치 인코딩", "Without positional encoding a transformer is permutation-equivariant"),
    Claim("C31", "Scaling by sqrt(d_k)", "스케일드 닷-프로덕트 어텐션", "Dividing by sqrt(d_k) keeps softmax from saturating as d_k grows"),
    Claim("C32", "Causal mask", "마스크드 어텐션", "A causal mask stops attention to future tokens"),
    Claim("C33", "Multi-head attention", "멀티 헤드 어텐션", "Multi-head: heads attend to different patterns"),
    Claim("C34", "Inductive bias", "귀납적 편향", "Self-attention is global from the first layer; CNN receptive field is local"),
    Claim("C35", "Long-range memory", "장기 의존성", "LSTM/GRU keep long-range information that a vanilla RNN loses"),
    Claim("C36", "GRU vs LSTM parameters", "GRU 파라미터 수", "GRU has fewer parameters than LSTM (3 vs 4 gate blocks)"),
    Claim("C37", "Gradient clipping", "그래디언트 클리핑", "Gradient clipping tames exploding gradients"),
    Claim("C38", "Attention in seq2seq", "어텐션 seq2seq", "Attention helps seq2seq on long sentences"),
    Claim("C39", "Word embeddings", "단어 임베딩", "Similar words get similar vectors; one-hot vectors have no similarity"),
    Claim("C40", "FastText subwords", "FastText 서브워드", "FastText embeds unseen words from character n-grams"),
    Claim("C41", "TF-IDF", "TF-IDF", "TF-IDF up-weights rare, document-specific words"),
    Claim("C42", "Parameters of density models", "밀도 추정", "Binary images of n pixels need 2^n - 1 parameters; independence n; Markov 2n - 1"),
    Claim("C43", "Reparameterization trick", "재매개변수화 트릭", "The reparameterization trick lets gradients reach mu and sigma"),
    Claim("C44", "Autoencoder vs VAE", "오토인코더 vs 변분 오토인코더", "A plain autoencoder is not a generator; a VAE's prior samples are"),
    Claim("C45", "CLIP and zero-shot", "대조 학습 / 제로샷", "CLIP pulls matching image/text pairs together and enables zero-shot classification"),
    Claim("C46", "PCA", "주성분 분석", "PCA components are uncorrelated and ordered by explained variance"),
    Claim("C47", "Pooling loses arrangement", "풀링", "Pooling discards where parts are relative to each other"),
    Claim("C48", "Transposed convolution", "전치 합성곱", "Transposed convolution does not exactly invert downsampling"),
)}  # fmt: skip
