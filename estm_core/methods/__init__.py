"""Transfer methods that need no trained weights (`estm transfer --method NAME`), one module or small package each;
each keeps the contract families.TransferMethod and has its entry in families.METHODS."""
